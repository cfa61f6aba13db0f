"""Training and evaluation with optional pruning masks, seeded and exactly repeatable on a CPU.

``train`` keeps a mask applied at every step: pruned weights start at 0, receive no gradient and
are re-zeroed after each optimiser step, so momentum, Adam's moments and weight decay cannot
revive them. It can save weight snapshots at chosen iterations (rewinding needs ``W_k``) and
returns a :class:`History` of loss and accuracy; plotting is left to :mod:`lecturelib.plots`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_positive_int
from .data import Dataset
from .pruning import check_mask

OPTIMIZERS = ("sgd", "adam")
# Devices with a fused Adam kernel (CPU from torch 2.4). Newer torch checks the device only at the
# first step, so make_optimizer decides by device rather than by catching the constructor's error.
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


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
    lr_milestones: Iterable[int] = (),
    lr_gamma: float = 0.1,
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
        lr_milestones, lr_gamma: a step schedule, as ``torch.optim.lr_scheduler.MultiStepLR``: the
            learning rate is multiplied by ``lr_gamma`` after each of these iterations (counted
            from the start of this call).
        l1: coefficient of an L1 penalty ``l1 * Σ|w|`` on the weights (parameters named ``*.weight``).
        mask: ``{parameter name: bool tensor}``; those weights are held at exactly 0.
        data_seed: seed of the order of the minibatches (the SGD noise *u*: the same model
            trained with two data seeds follows two different paths).
        eval_every: evaluate every this many steps (and at the end); default: once per epoch.
        snapshot_at: iterations ``k`` at which to keep a copy of the weights (``0`` = before training).
        device: where to train; default :func:`default_device`.
        progress: show a ``tqdm`` progress bar.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_int("batch_size", batch_size)
    steps_per_epoch = -(-len(data.y_train) // batch_size)
    if (iterations is None) == (epochs is None):
        raise ValueError(f"give exactly one of iterations or epochs, got iterations={iterations!r}, epochs={epochs!r}")
    total = check_positive_int("iterations", iterations) if iterations is not None else check_positive_int("epochs", epochs) * steps_per_epoch
    eval_every = steps_per_epoch if eval_every is None else check_positive_int("eval_every", eval_every)
    snapshot_at = set(snapshot_at)
    lr_milestones = sorted(check_positive_int("lr_milestones", m) for m in lr_milestones)
    if not 0 < lr_gamma <= 1:
        raise ValueError(f"lr_gamma must be in (0, 1], got {lr_gamma!r}")
    device = torch.device(device) if device is not None else default_device()

    model.to(device)
    pruned, keeps = _prepare_mask(model, mask, device)
    _zero_pruned(pruned, keeps)
    opt = make_optimizer(model.parameters(), optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    generator = torch.Generator().manual_seed(data_seed)
    history = History()
    order = torch.empty(0, dtype=torch.long)
    running, count = 0.0, 0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="training", leave=False)
    model.train()
    for step in range(total):
        if step in lr_milestones:
            for group in opt.param_groups:
                group["lr"] *= lr_gamma
        if step in snapshot_at:
            history.snapshots[step] = _copy_state(model)
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(y_train), generator=generator)
        batch = order[(step % steps_per_epoch) * batch_size:(step % steps_per_epoch + 1) * batch_size].to(device)
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        running, count = running + loss.item(), count + 1
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
        if (step + 1) % eval_every == 0 or step + 1 == total:
            _record(history, model, data, step + 1, running / count)
            running, count = 0.0, 0
    if total in snapshot_at:
        history.snapshots[total] = _copy_state(model)
    if bar is not None:
        bar.close()
    model.eval()
    return history


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
