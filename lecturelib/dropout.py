"""Dropout next to pruning (Chapter 4, notebooks/04_pruning_vs_dropout.ipynb): an MLP with dropout, the masks dropout samples, its 1/(1-p) scaling,
and Monte-Carlo dropout (averaging many sampled sub-networks).

Dropout (Srivastava et al. 2014) switches each hidden unit off with probability ``p`` at every
training step — a *new* random mask each step — and scales the survivors by ``1 / (1 - p)`` so that
the expected activation is unchanged ("inverted dropout", what ``nn.Dropout`` does). At inference
(``model.eval()``) every unit is on and nothing is scaled. A pruning mask, in contrast, is chosen
once and stays (see :mod:`lecturelib.pruning`).

Functions that take a model and inputs move the inputs to the model's device (a model trained on a
GPU works with a notebook's CPU tensors) and hand tensors back on the CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_fraction, check_positive_int
from . import models


def mlp_dropout(
    input_shape: Sequence[int],
    num_classes: int = 10,
    hidden: Sequence[int] = (300, 100),
    *,
    p: float = 0.5,
    seed: int | None = None,
) -> nn.Sequential:
    """Return :func:`lecturelib.models.mlp` with an ``nn.Dropout(p)`` after every hidden ReLU.

    Layer names (``fc1``, ``fc2``…) are those of ``models.mlp``, so masks and ``state_dict`` s are
    interchangeable, and the same ``seed`` gives the same initial weights as ``models.mlp`` (dropout
    has no parameters).

    Args:
        input_shape: shape of one input, e.g. ``(1, 8, 8)``; it is flattened.
        num_classes: number of logits.
        hidden: widths of the hidden layers.
        p: probability that a hidden unit is dropped at a training step, in [0, 1).
        seed: seed of the initial weights.

    Raises:
        ValueError / TypeError: ``p`` outside [0, 1) or a width that is not a positive int.
    """
    p = check_fraction("p", p)
    base = models.mlp(input_shape, num_classes, hidden, seed=seed)  # same layers, names and init
    layers: list[tuple[str, nn.Module]] = []
    for name, module in base.named_children():
        layers.append((name, module))
        if name.startswith("relu"):
            layers.append((f"drop{name[len('relu'):]}", nn.Dropout(p)))
    return nn.Sequential(OrderedDict(layers))


def sampled_dropout_masks(units: int, p: float, steps: int, *, seed: int = 0) -> torch.Tensor:
    """Return the masks an ``nn.Dropout(p)`` layer samples on ``steps`` consecutive training steps.

    A vector of ones of length ``units`` is passed through the real ``nn.Dropout`` in training mode
    ``steps`` times; a unit is *on* where the output is non-zero.

    Returns:
        Bool tensor ``(steps, units)``; row ``t`` is the mask of step ``t``.
    """
    units = check_positive_int("units", units)
    steps = check_positive_int("steps", steps)
    p = check_fraction("p", p)
    layer = nn.Dropout(p).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([layer(torch.ones(units)) != 0 for _ in range(steps)])


def mask_agreement(masks: torch.Tensor) -> float:
    """Return the mean fraction of units whose on/off state is the same in consecutive rows of ``masks``.

    For dropout masks this is about ``p² + (1 - p)²`` (the mask is resampled every step); for a
    pruning mask applied at every step it is exactly 1.

    Args:
        masks: ``(steps, units)`` bool / 0-1 tensor, ``steps >= 2``.
    """
    if masks.dim() != 2 or masks.shape[0] < 2:
        raise ValueError(f"masks must have shape (steps >= 2, units), got {tuple(masks.shape)}")
    masks = masks.bool()
    return float((masks[1:] == masks[:-1]).float().mean())


def dropout_scaling(p: float, *, units: int = 100_000, seed: int = 0) -> dict[str, float]:
    """Show numerically what ``nn.Dropout(p)`` does to an input of ones, in training and at inference.

    Returns:
        ``{"p", "dropped_fraction", "survivor_value", "expected_survivor_value" (= 1/(1-p)),
        "train_mean", "eval_min", "eval_max"}``: in training a fraction ≈ ``p`` of the units is 0,
        the others are ``1/(1-p)`` so the mean stays ≈ 1; in ``eval()`` mode every unit passes
        unchanged (min = max = 1).
    """
    p = check_fraction("p", p)
    units = check_positive_int("units", units)
    layer = nn.Dropout(p)
    ones = torch.ones(units)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = layer.train()(ones)
    survivors = out[out != 0]
    eval_out = layer.eval()(ones)
    return {
        "p": p,
        "dropped_fraction": float((out == 0).float().mean()),
        "survivor_value": float(survivors.mean()) if len(survivors) else float("nan"),
        "expected_survivor_value": 1.0 / (1.0 - p),
        "train_mean": float(out.mean()),
        "eval_min": float(eval_out.min()),
        "eval_max": float(eval_out.max()),
    }


def dropout_layers(model: nn.Module) -> list[nn.Dropout]:
    """Return the ``nn.Dropout`` modules of ``model`` in order."""
    return [m for m in model.modules() if isinstance(m, nn.Dropout)]


@torch.no_grad()
def mc_dropout_probabilities(model: nn.Module, x: torch.Tensor, samples: int, *, seed: int = 0) -> torch.Tensor:
    """Return the softmax outputs of ``samples`` random dropout sub-networks (Monte-Carlo dropout).

    Only the dropout layers are put in training mode (everything else stays in eval mode); each
    forward pass samples a new mask, i.e. a different sub-network (Gal & Ghahramani 2016). The
    model's modes are restored afterwards.

    Args:
        model: a network with ``nn.Dropout`` layers, on any device.
        x: inputs ``(N, ...)`` on any device; they are moved to the model's.
        samples: number of sub-networks.
        seed: seed of the sampled masks (on a GPU the masks come from its generator, seeded too).

    Returns:
        Float tensor ``(samples, N, classes)`` of class probabilities, on the CPU.

    Raises:
        ValueError: the model has no dropout layer.
    """
    samples = check_positive_int("samples", samples)
    layers = dropout_layers(model)
    if not layers:
        raise ValueError("the model has no nn.Dropout layer: Monte-Carlo dropout needs one (see mlp_dropout)")
    x = _on_model_device(model, x)
    cuda = [x.device] if x.device.type == "cuda" else []
    with models.eval_mode(model, training=layers), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        probs = torch.stack([torch.softmax(model(x), dim=1) for _ in range(samples)])
    return probs.cpu()


def mc_dropout_average(model: nn.Module, x: torch.Tensor, samples: int, *, seed: int = 0) -> torch.Tensor:
    """Return the Monte-Carlo dropout prediction: the mean of :func:`mc_dropout_probabilities` over the samples, ``(N, classes)`` on the CPU.

    The reference of chapter 4's exercise: average the *probabilities* of ``samples`` sub-networks
    (dropout layers in training mode, the rest in eval mode), not their logits; the model's modes are restored.
    """
    return mc_dropout_probabilities(model, x, samples, seed=seed).mean(0)


def ensemble_accuracy(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the accuracy of the average of the first ``k`` sub-networks, for ``k = 1 … samples``.

    Args:
        probs: ``(samples, N, classes)`` from :func:`mc_dropout_probabilities`.
        y: labels ``(N,)``.

    Returns:
        Float tensor ``(samples,)`` of accuracies in [0, 1].
    """
    if probs.dim() != 3 or probs.shape[1] != len(y):
        raise ValueError(f"probs must have shape (samples, N={len(y)}, classes), got {tuple(probs.shape)}")
    running = probs.cumsum(0) / torch.arange(1, len(probs) + 1, dtype=probs.dtype)[:, None, None]
    return (running.argmax(2) == y).float().mean(1)


def member_accuracies(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the accuracy of each sampled sub-network alone: float tensor ``(samples,)``."""
    if probs.dim() != 3 or probs.shape[1] != len(y):
        raise ValueError(f"probs must have shape (samples, N={len(y)}, classes), got {tuple(probs.shape)}")
    return (probs.argmax(2) == y).float().mean(1)


@torch.no_grad()
def is_deterministic(model: nn.Module, x: torch.Tensor, *, repeats: int = 3) -> bool:
    """Return whether ``model`` gives identical outputs on ``x`` over ``repeats`` calls in its current mode.

    ``x`` is moved to the model's device first.
    """
    repeats = check_positive_int("repeats", repeats)
    x = _on_model_device(model, x)
    first = model(x)
    return all(torch.equal(first, model(x)) for _ in range(repeats - 1))


def _on_model_device(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` on the device of ``model``'s parameters (unchanged for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return x if parameter is None else x.to(parameter.device)
