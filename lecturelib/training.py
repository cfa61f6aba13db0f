"""Training and evaluation with optional pruning masks, seeded and exactly repeatable on a CPU.

``train`` keeps a mask applied at every step: pruned weights start at 0, receive no gradient and
are re-zeroed after each optimiser step, so momentum, Adam's moments and weight decay cannot
revive them. It can save weight snapshots at chosen iterations (rewinding needs ``W_k``) and
returns a :class:`History` of loss and accuracy; plotting is left to :mod:`lecturelib.plots`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_number, check_positive_int
from .data import Dataset
from .pruning import check_mask

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("step", "cosine")
# Devices with a fused Adam kernel (CPU from torch 2.4). Newer torch checks the device only at the
# first step, so make_optimizer decides by device rather than by catching the constructor's error.
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


_STEP_LISTENERS: list[Callable[[int], None]] = []   # see listening_to_steps


@contextlib.contextmanager
def listening_to_steps(callback: Callable[[int], None]) -> Iterator[None]:
    """Within the block, call ``callback(n)`` each time training takes ``n`` more optimiser steps.

    :func:`lecturelib.experiments.run` uses it to drive one progress bar over all the trainings of
    an experiment without the experiment's code passing a bar around.
    """
    _STEP_LISTENERS.append(callback)
    try:
        yield
    finally:
        _STEP_LISTENERS.remove(callback)


def notify_steps(n: int) -> None:
    """Tell the :func:`listening_to_steps` callbacks that ``n`` optimiser steps were taken (a loop that trains calls it)."""
    for callback in _STEP_LISTENERS:
        callback(n)


def default_device() -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random number generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class History:
    """What happened during one call of :func:`train`, one entry per evaluation.

    ``iteration[i]`` is the number of optimiser steps taken when ``train_loss[i]`` (mean loss of the
    minibatches since the previous evaluation), ``val_*`` and ``test_*`` were measured. Accuracies
    are fractions in [0, 1]. ``snapshots[k]`` is a copy of the ``state_dict`` before step ``k + 1``
    (``snapshots[0]`` is the initialisation ``W_0``).
    """

    iteration: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def best_index(self) -> int:
        """Index of the evaluation with the highest validation accuracy (test accuracy if there is no validation set); the earliest wins ties."""
        accs = self.val_acc if self.val_acc else self.test_acc
        if not accs:
            raise ValueError("the history has no evaluations; call train(..., eval_every=N)")
        return int(np.argmax(accs))

    @property
    def best_iteration(self) -> int:
        """Early-stopping iteration: the step count at the best validation accuracy."""
        return self.iteration[self.best_index]

    @property
    def final_test_acc(self) -> float:
        """Test accuracy at the last evaluation."""
        return self.test_acc[-1]

    def to_dict(self) -> dict[str, list]:
        """The curves as plain lists (no snapshots), ready for JSON."""
        keys = ("iteration", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc")
        return {key: list(getattr(self, key)) for key in keys}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024) -> tuple[float, float]:
    """Return ``(mean cross-entropy loss, accuracy in [0, 1])`` of ``model`` on images ``x`` (N, C, H, W) and labels ``y`` (N,)."""
    if len(y) == 0:
        raise ValueError("evaluate needs at least one example, got an empty tensor")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    model.train(was_training)
    return loss_sum / len(y), correct / len(y)


def train(
    model: nn.Module,
    data: Dataset,
    *,
    iterations: int | None = None,
    epochs: int | None = None,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    lr_schedule: str = "step",
    lr_milestones: Iterable[int] = (),
    lr_gamma: float = 0.1,
    start_iteration: int = 0,
    run_iterations: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    mask: dict[str, torch.Tensor] | None = None,
    data_seed: int = 0,
    eval_every: int | None = None,
    snapshot_at: Iterable[int] = (),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` in place with minibatch SGD or Adam on ``data``; return its :class:`History`.

    Args:
        model: the network; its current weights are the starting point.
        data: a :class:`~lecturelib.data.Dataset`.
        iterations / epochs: how long to train — give exactly one (an epoch is
            ``ceil(len(train) / batch_size)`` steps).
        batch_size: examples per step.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        lr, momentum, weight_decay: optimiser settings; ``weight_decay`` is the L2 penalty
            ``weight_decay / 2 * ||w||²`` implemented by the optimiser.
        lr_schedule: ``"step"`` (``lr_milestones``, ``lr_gamma``) or ``"cosine"`` (from ``lr`` down to 0
            at the end of the run, no warm-up); see :func:`scheduled_lr`.
        lr_milestones, lr_gamma: the step schedule, as ``torch.optim.lr_scheduler.MultiStepLR``: the
            learning rate is multiplied by ``lr_gamma`` from each of these iterations on.
        start_iteration, run_iterations: where on the schedule of a ``run_iterations``-step run
            this call begins (defaults 0 and ``start_iteration + iterations``: this call is the whole
            run). To continue a ``T``-step run from rewound weights ``W_k``, train ``iterations=T - k``
            with ``start_iteration=k``; to take ``W_k`` from the first ``k`` steps of a ``T``-step run,
            train ``iterations=k`` with ``run_iterations=T``. Milestones are iterations of the whole
            run; the cosine reaches 0 at its end. ``History`` iterations, ``eval_every`` and
            ``snapshot_at`` count this call's steps.
        l1: coefficient of an L1 penalty ``l1 * Σ|w|`` on the weights (parameters named ``*.weight``).
        mask: ``{parameter name: bool tensor}``; those weights are held at exactly 0.
        data_seed: seed of the order of the minibatches (the SGD noise *u*: the same model
            trained with two data seeds follows two different paths).
        eval_every: evaluate every this many steps (and at the end); default: once per epoch.
        snapshot_at: iterations ``k`` at which to keep a copy of the weights (``0`` = before training).
        device: where to train; default :func:`default_device` (CUDA, then MPS, then the CPU). The
            model is moved back to the device it came from when training ends, so inputs on that
            device (a notebook's CPU tensors) work with it after a GPU run.
        progress: show a ``tqdm`` progress bar.

    Raises:
        ValueError / TypeError: a bad setting, named with its value (``lr`` NaN or <= 0, ``snapshot_at``
            outside ``[0, iterations]``, …), before any step.
        FloatingPointError: the loss became NaN or infinite — training diverged; lower ``lr``.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    steps_per_epoch, batch_size, total, eval_every, snapshot_at, lr, lr_milestones, start_iteration, run_total = _check_schedule(
        data, iterations=iterations, epochs=epochs, batch_size=batch_size, eval_every=eval_every, snapshot_at=snapshot_at,
        lr=lr, lr_schedule=lr_schedule, lr_milestones=lr_milestones, lr_gamma=lr_gamma, start_iteration=start_iteration,
        run_iterations=run_iterations)
    device = torch.device(device) if device is not None else default_device()

    home = next(model.parameters()).device   # handed back there: a notebook's CPU tensors keep working on a GPU machine
    model.to(device)
    pruned, keeps = _prepare_mask(model, mask, device)
    _zero_pruned(pruned, keeps)
    opt = make_optimizer(model.parameters(), optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    batches = _minibatch_order(len(y_train), batch_size, total, data_seed)
    history = History()
    running, count = 0.0, 0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="training", leave=False)
    model.train()
    for step in range(total):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, start_iteration + step, schedule=lr_schedule, total=run_total,
                                       milestones=lr_milestones, gamma=lr_gamma)
        if step in snapshot_at:
            history.snapshots[step] = _copy_state(model)
        batch = next(batches).to(device)
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"training diverged: the loss is {value} at iteration {start_iteration + step + 1} "
                                     f"with lr={lr!r} ({optimizer}); lower lr")
        running, count = running + value, count + 1
        if l1:
            loss = loss + l1 * sum(w.abs().sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if pruned:  # no gradient into pruned weights, and re-zero them after the step (momentum, decay)
            torch._foreach_mul_([param.grad for param in pruned], keeps)
        opt.step()
        _zero_pruned(pruned, keeps)
        if bar is not None:
            bar.update()
        notify_steps(1)
        if (step + 1) % eval_every == 0 or step + 1 == total:
            _record(history, model, data, step + 1, running / count)
            running, count = 0.0, 0
    if total in snapshot_at:
        history.snapshots[total] = _copy_state(model)
    if bar is not None:
        bar.close()
    model.eval()
    model.to(home)
    return history


class _Schedule(NamedTuple):
    """A training call's checked settings, as :func:`_check_schedule` returns them."""

    steps_per_epoch: int
    batch_size: int
    total: int                 # optimiser steps of this call
    eval_every: int
    snapshot_at: set[int]
    lr: float
    lr_milestones: list[int]
    start_iteration: int
    run_total: int             # steps of the whole run this call is part of


def _check_schedule(data: Dataset, *, iterations, epochs, batch_size, eval_every, snapshot_at, lr, lr_schedule,
                    lr_milestones, lr_gamma, start_iteration, run_iterations) -> _Schedule:
    """Check the step counts and learning-rate settings of :func:`train` / :func:`train_many` and return them resolved."""
    batch_size = check_positive_int("batch_size", batch_size)
    steps_per_epoch = -(-len(data.y_train) // batch_size)
    if (iterations is None) == (epochs is None):
        raise ValueError(f"give exactly one of iterations or epochs, got iterations={iterations!r}, epochs={epochs!r}")
    total = check_positive_int("iterations", iterations) if iterations is not None else check_positive_int("epochs", epochs) * steps_per_epoch
    eval_every = steps_per_epoch if eval_every is None else check_positive_int("eval_every", eval_every)
    snapshot_at = {check_positive_int("snapshot_at", k, allow_zero=True) for k in snapshot_at}
    if any(k > total for k in snapshot_at):
        raise ValueError(f"snapshot_at must lie in [0, {total}] (0 = before training, {total} = the end), "
                         f"got {sorted(k for k in snapshot_at if k > total)}")
    lr = check_number("lr", lr)
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    lr_milestones = sorted(check_positive_int("lr_milestones", m) for m in lr_milestones)
    if lr_schedule == "cosine" and lr_milestones:
        raise ValueError(f"lr_milestones apply only to lr_schedule='step', got lr_schedule='cosine' with lr_milestones={lr_milestones!r}")
    start_iteration = check_positive_int("start_iteration", start_iteration, allow_zero=True)
    run_total = start_iteration + total if run_iterations is None else check_positive_int("run_iterations", run_iterations)
    if run_total < start_iteration + total:
        raise ValueError(f"run_iterations must be at least start_iteration + the steps of this call = {start_iteration + total}, got {run_iterations!r}")
    if not 0 < lr_gamma <= 1:
        raise ValueError(f"lr_gamma must be in (0, 1], got {lr_gamma!r}")
    return _Schedule(steps_per_epoch, batch_size, total, eval_every, snapshot_at, lr, lr_milestones, start_iteration, run_total)


def _minibatch_order(n_examples: int, batch_size: int, total: int, data_seed: int) -> Iterator[torch.Tensor]:
    """Yield the example indices of each of ``total`` steps: a new permutation drawn from ``data_seed``'s generator at each epoch's start."""
    generator = torch.Generator().manual_seed(data_seed)
    steps_per_epoch = -(-n_examples // batch_size)
    order = torch.empty(0, dtype=torch.long)
    for step in range(total):
        if step % steps_per_epoch == 0:
            order = torch.randperm(n_examples, generator=generator)
        yield order[(step % steps_per_epoch) * batch_size:(step % steps_per_epoch + 1) * batch_size]


def train_many(
    models: Sequence[nn.Module],
    data: Dataset,
    *,
    masks: Sequence[dict[str, torch.Tensor] | None] | None = None,
    data_seeds: Sequence[int] | None = None,
    iterations: int | None = None,
    epochs: int | None = None,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    lr_schedule: str = "step",
    lr_milestones: Iterable[int] = (),
    lr_gamma: float = 0.1,
    start_iteration: int = 0,
    run_iterations: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    eval_every: int | None = None,
    snapshot_at: Iterable[int] = (),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> list[History]:
    """Train several networks of one architecture together; return one :class:`History` per network.

    Each network ends where :func:`train` takes it with the same settings, its own mask and its own
    data seed: the same minibatches, optimiser, schedule, penalties, evaluations and snapshots. Only
    the arithmetic is arranged differently. The ``N`` networks' weights are stacked into tensors of
    shape ``(N, *shape)``, and one step runs every layer once for all of them — a linear layer is
    one batched product ``torch.baddbmm(b, x, Wᵀ)`` of inputs ``x`` of shape ``(N, batch, in)``, a
    convolution one grouped convolution with ``N`` times the groups — then one optimiser step over
    the stacked tensors (Adam and SGD update every weight on its own, so stacking changes nothing).
    A small network leaves a CPU core mostly waiting on Python and on launching small kernels; ``N``
    of them at once keep it busy (the performance page measures the speed-up). The batched kernels
    add up their products in another order than the single ones, so the results equal
    :func:`train`'s to float32 rounding, not bit for bit.

    The models are trained in place (during the call their weights live in the stacked tensors;
    each model gets its own storage back, holding the trained weights). Pruned weights are held at
    exactly 0 as in :func:`train`.

    Args:
        models: ``N ≥ 1`` distinct networks of one architecture: an ``nn.Sequential`` (nested ones
            allowed) of ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` and layers without parameters or
            randomness (``ReLU``, ``Flatten``, ``MaxPool2d``…), as :mod:`lecturelib.models` builds.
        data: a :class:`~lecturelib.data.Dataset`.
        masks: one mask (or ``None``) per network, as ``train``'s ``mask``; default: no masks.
        data_seeds: one minibatch-order seed per network, as ``train``'s ``data_seed``; default: 0 for all.
        iterations, epochs, batch_size, optimizer, lr, lr_schedule, lr_milestones, lr_gamma,
        start_iteration, run_iterations, momentum, weight_decay, l1, eval_every, snapshot_at,
        device, progress: as in :func:`train`, the same for every network (each network's
            :class:`History` keeps its own snapshots).

    Raises:
        TypeError: a model is not such an ``nn.Sequential``.
        ValueError: the models differ in architecture or share weights; ``masks`` or ``data_seeds``
            do not hold one entry per model; a setting :func:`train` refuses.
        FloatingPointError: a network's loss is not finite.
    """
    models = list(models)
    layers = _stacked_layers(models)
    n = len(models)
    masks = [None] * n if masks is None else list(masks)
    data_seeds = [0] * n if data_seeds is None else [check_positive_int("data_seeds", s, allow_zero=True) for s in data_seeds]
    for name, values in (("masks", masks), ("data_seeds", data_seeds)):
        if len(values) != n:
            raise ValueError(f"{name} must hold one entry per model, {n}, got {len(values)}")
    check_choice("optimizer", optimizer, OPTIMIZERS)
    plan = _check_schedule(data, iterations=iterations, epochs=epochs, batch_size=batch_size, eval_every=eval_every,
                           snapshot_at=snapshot_at, lr=lr, lr_schedule=lr_schedule, lr_milestones=lr_milestones,
                           lr_gamma=lr_gamma, start_iteration=start_iteration, run_iterations=run_iterations)
    device = torch.device(device) if device is not None else default_device()

    homes = [next(model.parameters()).device for model in models]
    own = [dict(model.to(device).named_parameters()) for model in models]
    stacked = {name: torch.stack([params[name].detach() for params in own]).requires_grad_() for name in own[0]}
    originals = [{name: param.data for name, param in params.items()} for params in own]
    pruned, keeps = _stacked_mask(models, masks, stacked, device)
    histories = [History() for _ in models]
    try:
        for i, params in enumerate(own):   # each model's weights become views of its slice: evaluate and snapshots read them
            for name, param in params.items():
                param.data = stacked[name].detach()[i]
        _zero_pruned(pruned, keeps)
        opt = make_optimizer(stacked.values(), optimizer, lr=plan.lr, momentum=momentum, weight_decay=weight_decay)
        weights = [param for name, param in stacked.items() if name.endswith("weight")]
        x_train, y_train = data.x_train.to(device), data.y_train.to(device)
        orders = [_minibatch_order(len(y_train), plan.batch_size, plan.total, seed) for seed in data_seeds]
        running, count = [0.0] * n, 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=plan.total, desc=f"training {n} networks", leave=False)
        for step in range(plan.total):
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(plan.lr, plan.start_iteration + step, schedule=lr_schedule, total=plan.run_total,
                                           milestones=plan.lr_milestones, gamma=lr_gamma)
            if step in plan.snapshot_at:
                for model, history in zip(models, histories):
                    history.snapshots[step] = _copy_state(model)
            batch = torch.stack([next(order) for order in orders]).to(device)          # (N, batch)
            losses = _stacked_losses(layers, stacked, x_train[batch], y_train[batch])  # (N,)
            values = losses.tolist()
            for i, value in enumerate(values):
                if not math.isfinite(value):
                    raise FloatingPointError(f"training diverged: network {i}'s loss is {value} at iteration "
                                             f"{plan.start_iteration + step + 1} with lr={plan.lr!r} ({optimizer}); lower lr")
                running[i] += value
            count += 1
            loss = losses.sum()   # each network's gradient is that of its own loss
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if pruned:
                torch._foreach_mul_([param.grad for param in pruned], keeps)
            opt.step()
            _zero_pruned(pruned, keeps)
            if bar is not None:
                bar.update()
            notify_steps(n)
            if (step + 1) % plan.eval_every == 0 or step + 1 == plan.total:
                for i, (model, history) in enumerate(zip(models, histories)):
                    _record(history, model, data, step + 1, running[i] / count)
                running, count = [0.0] * n, 0
        if plan.total in plan.snapshot_at:
            for model, history in zip(models, histories):
                history.snapshots[plan.total] = _copy_state(model)
        if bar is not None:
            bar.close()
    finally:   # every model gets its own storage back, holding its trained weights
        with torch.no_grad():
            for i, params in enumerate(own):
                for name, param in params.items():
                    originals[i][name].copy_(stacked[name][i])
                    param.data = originals[i][name]
        for model, home in zip(models, homes):
            model.eval()
            model.to(home)
    return histories


_CONVOLUTIONS = {nn.Conv1d: nn.functional.conv1d, nn.Conv2d: nn.functional.conv2d}


def _stacked_layers(models: list[nn.Module]) -> list[tuple[str, nn.Module]]:
    """Return the first model's ``(name, layer)`` in the order they run, after checking that :func:`train_many` can stack them."""
    if not models:
        raise ValueError("models must hold at least one network, got none")
    for i, model in enumerate(models):
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"train_many trains nn.Sequential networks, got {type(model).__name__} at models[{i}]; use train")
    reference = [(name, tuple(p.shape), p.dtype) for name, p in models[0].named_parameters()]
    for i, model in enumerate(models[1:], start=1):
        if repr(model) != repr(models[0]) or [(name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()] != reference:
            raise ValueError(f"models must share one architecture, but models[{i}] differs from models[0]:\n"
                             f"models[0] = {models[0]}\nmodels[{i}] = {model}")
    ids = [id(p) for model in models for p in model.parameters()]
    if len(set(ids)) != len(ids):
        raise ValueError("models must not share weights (the same model twice, or a shallow copy); pass independent copies (clone_model)")
    layers = list(_sequential_leaves(models[0]))
    for name, layer in layers:
        stackable = type(layer) is nn.Linear or (type(layer) in _CONVOLUTIONS and layer.padding_mode == "zeros")
        plain = (next(layer.parameters(), None) is None and next(layer.buffers(), None) is None
                 and not isinstance(layer, nn.modules.dropout._DropoutNd) and not (isinstance(layer, nn.Flatten) and layer.start_dim != 1))
        if not (stackable or plain):
            raise TypeError(f"train_many cannot stack layer {name!r} ({layer}): it handles nn.Linear, nn.Conv1d and nn.Conv2d "
                            "(zero padding) and layers without parameters, buffers or randomness; use train")
    return layers


def _sequential_leaves(module: nn.Sequential, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            yield from _sequential_leaves(child, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", child


def _stacked_mask(models, masks, stacked, device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return the stacked parameters any mask prunes and their stacked 0/1 masks (ones for a network without that entry)."""
    per_model = []
    for model, mask in zip(models, masks):
        _, keeps = _prepare_mask(model, mask, device)
        per_model.append(dict(zip(mask or {}, keeps)))
    names = [name for name in stacked if any(name in keeps for keeps in per_model)]
    return ([stacked[name] for name in names],
            [torch.stack([keeps.get(name, torch.ones_like(stacked[name][0])) for keeps in per_model]) for name in names])


def _stacked_losses(layers, stacked: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return each network's mean cross-entropy, shape ``(N,)``, on its own minibatch ``x`` (N, B, …) with labels ``y`` (N, B)."""
    n, b = y.shape
    h = x
    for name, layer in layers:
        if isinstance(layer, nn.Linear):   # one batched product: (N, B, in) @ (N, in, out) + (N, 1, out)
            weight, bias = stacked[f"{name}.weight"], stacked.get(f"{name}.bias")
            h = torch.bmm(h, weight.transpose(1, 2)) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        elif type(layer) in _CONVOLUTIONS:  # the N networks' channels side by side, one group (set) per network
            weight, bias = stacked[f"{name}.weight"], stacked.get(f"{name}.bias")
            out = _CONVOLUTIONS[type(layer)](h.transpose(0, 1).flatten(1, 2), weight.flatten(0, 1),
                                             None if bias is None else bias.flatten(), layer.stride, layer.padding,
                                             layer.dilation, layer.groups * n)
            h = out.unflatten(1, (n, -1)).transpose(0, 1)
        else:                              # a layer without weights works on each example alone
            h = layer(h.flatten(0, 1)).unflatten(0, (n, b))
    return nn.functional.cross_entropy(h.flatten(0, 1), y.flatten(), reduction="none").view(n, b).mean(1)


def scheduled_lr(lr: float, iteration: int, *, schedule: str = "step", total: int,
                 milestones: Iterable[int] = (), gamma: float = 0.1) -> float:
    """Return the learning rate of optimiser step ``iteration`` (0-based) of a ``total``-step run.

    ``"step"``: ``lr`` multiplied by ``gamma`` once for each milestone ``<= iteration``
    (``torch.optim.lr_scheduler.MultiStepLR``). ``"cosine"``: ``lr * (1 + cos(pi * iteration / total)) / 2``,
    from ``lr`` at the first step down to 0 at ``total`` with no warm-up — the annealing that
    leaves a run's end point at the bottom of its basin (Frankle et al. 2020 anneal their ends with
    step decays). A pure function of the step, so networks trained together can share it.

    Examples:
        >>> [round(scheduled_lr(0.1, t, schedule="cosine", total=4), 4) for t in range(5)]
        [0.1, 0.0854, 0.05, 0.0146, 0.0]
        >>> [round(scheduled_lr(0.1, t, total=4, milestones=(2,)), 4) for t in range(4)]
        [0.1, 0.1, 0.01, 0.01]
    """
    if schedule == "cosine":
        return lr * (1.0 + math.cos(math.pi * iteration / total)) / 2.0
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    for milestone in sorted(milestones):
        if milestone <= iteration:
            lr *= gamma
    return lr


def make_optimizer(params: Iterable[torch.Tensor], optimizer: str = "adam", *, lr: float = 1e-3,
                   momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Return the optimiser :func:`train` uses: ``"adam"`` or ``"sgd"`` (with ``momentum``) over ``params``.

    Adam is PyTorch's fused implementation where the installed version has it for the
    parameters' device (CUDA; CPU from torch 2.4): one kernel per step instead of a dozen, about
    40 % faster on the course's networks, and no slower on sparse ones — the unfused update takes
    ``sqrt`` of the exactly-zero second moments of pruned weights, which some CPUs do slowly.
    Elsewhere (MPS, older torch on a CPU) it is the ordinary Adam, with the same update.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    params = list(params)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if all(p.is_floating_point() and p.device.type in _FUSED_ADAM_DEVICES for p in params):
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):   # torch < 2.4 refuses CPU parameters here
            pass
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _prepare_mask(model: nn.Module, mask, device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return the masked parameters and their 0/1 masks in the parameters' dtype and device."""
    if mask is None:
        return [], []
    check_mask(model, mask)
    params = dict(model.named_parameters())
    return [params[name] for name in mask], [keep.to(device=device, dtype=params[name].dtype) for name, keep in mask.items()]


@torch.no_grad()
def _zero_pruned(pruned: list[torch.Tensor], keeps: list[torch.Tensor]) -> None:
    # One fused multi-tensor kernel instead of one small multiply per layer: masked steps cost ~ dense ones.
    if pruned:
        torch._foreach_mul_(pruned, keeps)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


def _record(history: History, model: nn.Module, data: Dataset, step: int, train_loss: float) -> None:
    history.iteration.append(step)
    history.train_loss.append(train_loss)
    if len(data.y_val):
        loss, acc = evaluate(model, data.x_val, data.y_val)
        history.val_loss.append(loss)
        history.val_acc.append(acc)
    loss, acc = evaluate(model, data.x_test, data.y_test)
    history.test_loss.append(loss)
    history.test_acc.append(acc)
    model.train()


def clone_model(model: nn.Module) -> nn.Module:
    """Return a deep copy of ``model`` (same architecture and weights, independent storage)."""
    return copy.deepcopy(model)
