"""Figure 1: what a mask costs during training — lecturelib's masked training vs dense, and vs
``torch.nn.utils.prune``'s reparametrisation, timed in interleaved rounds on the same batches.

Three trainings of the same initial network on the same minibatches with the same optimiser:

* ``dense`` — :func:`lecturelib.training.train` without a mask;
* ``masked`` — the same call with a mask (gradients masked, weights re-zeroed after each step);
* ``torch_prune`` — the mask attached with ``prune.custom_from_mask`` (:func:`lecturelib.pruning.to_torch_prune`:
  ``weight = weight_orig * weight_mask`` recomputed by a forward pre-hook) and a plain loop of the
  same shape as lecturelib's (same permutation generator, batches, ``loss.item()``, optimiser,
  one evaluation at the end).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from lecturelib import data as data_module
from lecturelib import models, pruning, training

from . import Timer, calibrated_count, interleaved_runs, paired_ratio, summary, torch_threads

TARGET_VS_DENSE = 1.10   # masked / dense time per epoch, at most
TARGET_VS_TORCH = 1.00   # masked / torch.nn.utils.prune time per epoch, at most ("no slower")


def plain_train(
    model: nn.Module, data: data_module.Dataset, *, epochs: int, batch_size: int = 64, lr: float = 1e-3, data_seed: int = 0
) -> float:
    """Train ``model`` with Adam by a plain loop shaped like :func:`lecturelib.training.train`; return its test accuracy.

    The minibatches are exactly lecturelib's (a ``randperm`` from a generator seeded with
    ``data_seed`` at every epoch start), so the two loops do the same arithmetic apart from
    how the mask is applied.
    """
    opt = training.make_optimizer(model.parameters(), "adam", lr=lr)   # the same Adam as lecturelib's loop
    x_train, y_train = data.x_train, data.y_train
    steps_per_epoch = -(-len(y_train) // batch_size)
    generator = torch.Generator().manual_seed(data_seed)
    running = 0.0
    model.train()
    for step in range(epochs * steps_per_epoch):
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(y_train), generator=generator)
        batch = order[(step % steps_per_epoch) * batch_size:(step % steps_per_epoch + 1) * batch_size]
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        running += loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _, acc = training.evaluate(model, data.x_test, data.y_test)
    model.eval()
    return acc


def build(model_name: str, data: data_module.Dataset, seed: int = 0) -> nn.Module:
    """Return the course's ``"mlp"`` (LeNet-300-100) or ``"cnn"`` (conv 16-32) for ``data``, initialised from ``seed``."""
    return models.build_model(model_name, data.input_shape, data.num_classes, seed=seed)


SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}   # the diagnosis run: masks without Adam's sqrt


def variants(base: nn.Module, mask: pruning.Mask, data: data_module.Dataset, *, epochs: int, batch_size: int = 64) -> dict:
    """Return ``{"dense", "masked", "torch_prune", "dense_sgd", "masked_sgd"}`` functions that each
    copy ``base``, train it and return the training's seconds (Adam, except the two ``_sgd`` ones)."""
    steps = epochs * -(-len(data.y_train) // batch_size)
    adam = {"epochs": epochs, "batch_size": batch_size, "optimizer": "adam", "lr": 1e-3,
            "data_seed": 0, "eval_every": steps, "device": "cpu"}

    def lecturelib_training(**kwargs):
        def run() -> float:
            model = copy.deepcopy(base)
            with Timer() as t:
                training.train(model, data, **kwargs)
            return t.seconds
        return run

    def torch_prune() -> float:
        model = pruning.to_torch_prune(copy.deepcopy(base), mask)
        with Timer() as t:
            plain_train(model, data, epochs=epochs, batch_size=batch_size)
        return t.seconds

    return {"dense": lecturelib_training(**adam), "masked": lecturelib_training(**adam, mask=mask),
            "torch_prune": torch_prune,
            "dense_sgd": lecturelib_training(**{**adam, **SGD}), "masked_sgd": lecturelib_training(**{**adam, **SGD}, mask=mask)}


def sqrt_zero_vs_positive(n: int = 30_000, calls: int = 200, *, warmup: int = 1, repeats: int = 7) -> dict[str, float]:
    """Return the paired ratio of ``sqrt`` time on ``n`` exact zeros ÷ on ``n`` positive numbers (float32).

    Adam divides by ``sqrt`` of its second-moment estimate at every step; a pruned weight (or a
    weight into a dead ReLU unit) has an exactly-zero gradient, hence an exactly-zero second moment.
    Some CPUs take a slow path for ``sqrt(0)``, which makes sparse Adam steps cost more than dense ones.
    """
    zeros, positive = torch.zeros(n), torch.rand(n) + 0.5

    def timed(x: torch.Tensor):
        def run() -> float:
            with Timer() as t:
                for _ in range(calls):
                    x.sqrt()
            return t.seconds
        return run

    times = interleaved_runs({"zeros": timed(zeros), "positive": timed(positive)}, warmup=warmup, repeats=repeats)
    return paired_ratio(times["zeros"], times["positive"])


def run(
    model_names: Sequence[str] = ("mlp", "cnn"),
    *,
    sparsity: float = 0.9,
    epochs: int | None = None,
    min_seconds: float = 0.2,
    warmup: int = 1,
    repeats: int = 7,
    threads: int | None = 1,
    data: data_module.Dataset | None = None,
) -> dict:
    """Time the three trainings per model in interleaved rounds; return medians per epoch and the ratios.

    Args:
        model_names: course models to time (``"mlp"``, ``"cnn"``).
        sparsity: fraction of weights the (global magnitude) mask prunes.
        epochs: epochs per timed training (the time is divided by it); default: calibrated so that
            every model's dense SGD training, the cheapest of the five, takes at least ``min_seconds``
            (a 2-epoch run, ~50 ms, gave verdicts that flipped from run to run).
        warmup / repeats: untimed and timed interleaved rounds.
        threads: PyTorch threads during the benchmark (``None``: unchanged); 1, as the course's
            experiment runner trains on a CPU, keeps thread scheduling on a shared machine out of the ratios.
        data: the dataset (default: the offline digits).

    Returns:
        A JSON-ready dict: settings, per model ``seconds_per_epoch`` summaries and the ratios
        ``masked_vs_dense``, ``masked_vs_torch_prune``, ``torch_prune_vs_dense`` and, as a diagnosis,
        ``masked_vs_dense_sgd`` (medians of paired per-round ratios), the targets and whether they are
        met, and ``sqrt_zero_vs_positive`` (see :func:`sqrt_zero_vs_positive`).
    """
    data = data_module.load_dataset("digits", seed=0) if data is None else data
    nets = {name: build(name, data, seed=0) for name in model_names}
    masks = {name: pruning.global_magnitude_mask(base, sparsity) for name, base in nets.items()}
    if epochs is None:
        with torch_threads(threads):
            epochs = max(calibrated_count(lambda e: variants(nets[name], masks[name], data, epochs=e)["dense_sgd"](), min_seconds)  # noqa: B023
                         for name in model_names)
    out = {"settings": {"dataset": data.name, "train_images": len(data.y_train), "batch_size": 64, "optimizer": "adam",
                        "sparsity": sparsity, "epochs_per_run": epochs, "min_seconds": min_seconds, "warmup": warmup, "repeats": repeats,
                        "torch_threads": threads or torch.get_num_threads(), "order": "dense, masked, torch_prune, dense_sgd, masked_sgd interleaved",
                        "sgd": {"lr": SGD["lr"], "momentum": SGD["momentum"]}},
           "targets": {"masked_vs_dense": TARGET_VS_DENSE, "masked_vs_torch_prune": TARGET_VS_TORCH},
           "models": {}}
    for name in model_names:
        base, mask = nets[name], masks[name]
        with torch_threads(threads):
            times = interleaved_runs(variants(base, mask, data, epochs=epochs), warmup=warmup, repeats=repeats)
        per_epoch = {label: [t / epochs for t in values] for label, values in times.items()}
        ratios = {
            "masked_vs_dense": paired_ratio(per_epoch["masked"], per_epoch["dense"]),
            "masked_vs_torch_prune": paired_ratio(per_epoch["masked"], per_epoch["torch_prune"]),
            "torch_prune_vs_dense": paired_ratio(per_epoch["torch_prune"], per_epoch["dense"]),
            "masked_vs_dense_sgd": paired_ratio(per_epoch["masked_sgd"], per_epoch["dense_sgd"]),
        }
        out["models"][name] = {
            "parameters": models.count_parameters(base),
            "seconds_per_epoch": {label: summary(values) for label, values in per_epoch.items()},
            "raw_seconds_per_epoch": per_epoch,
            "ratios": ratios,
            "met": {
                "masked_vs_dense": ratios["masked_vs_dense"]["median"] <= TARGET_VS_DENSE,
                "masked_vs_torch_prune": ratios["masked_vs_torch_prune"]["median"] <= TARGET_VS_TORCH,
            },
        }
    with torch_threads(threads):
        out["sqrt_zero_vs_positive"] = sqrt_zero_vs_positive(warmup=warmup, repeats=repeats)
    return out
