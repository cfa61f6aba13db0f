"""Training and evaluation with optional pruning masks, seeded and exactly repeatable on a CPU (masked
training: Chapter 5, notebooks/05_pruning_loop.ipynb; every chapter trains with it).

``train`` keeps a mask applied at every step: pruned weights start at 0, receive no gradient and
are re-zeroed after each optimiser step, so momentum, Adam's moments and weight decay cannot
revive them. It can save weight snapshots at chosen iterations (rewinding needs ``W_k``) and
returns a :class:`History` of loss and accuracy; plotting is left to :mod:`lecturelib.plots`.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_number, check_one_each, check_positive_int
from .data import Dataset
from .models import eval_mode
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


def default_device() -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: torch.device | str | None) -> torch.device:
    """Return ``device`` as a ``torch.device``; ``None`` or ``"auto"`` is :func:`default_device`."""
    return default_device() if device in (None, "auto") else torch.device(device)


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
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    with eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            logits = model(xb)
            loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(y), correct / len(y)


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train` and :func:`train_many` train: every setting but the mask and the data order.

    A frozen dataclass, checked when it is made (a bad value raises there, naming the setting).
    ``train(model, data, settings, lr=…)`` takes one and/or the same names as keywords; an
    experiment's config can inherit from it.

    Attributes:
        iterations / epochs: how long to train — give exactly one (an epoch is
            ``ceil(len(train) / batch_size)`` steps).
        batch_size: examples per step.
        optimizer, lr, momentum, weight_decay: ``"adam"`` or ``"sgd"`` (with ``momentum``) at learning
            rate ``lr`` (:func:`make_optimizer`); ``weight_decay`` is the L2 penalty
            ``weight_decay / 2 * ||w||²`` implemented by the optimiser.
        l1: coefficient of an L1 penalty ``l1 * Σ|w|`` on the weights (parameters named ``*.weight``).
        lr_schedule, lr_milestones, lr_gamma: ``"step"`` — the learning rate is multiplied by
            ``lr_gamma`` from each milestone iteration on (``torch.optim.lr_scheduler.MultiStepLR``) —
            or ``"cosine"``: ``lr * (1 + cos(pi * t / T)) / 2`` at iteration ``t`` of a ``T``-step run,
            from ``lr`` down to 0 at the end, no warm-up (:func:`lr_scheduler`).
        start_iteration, run_iterations: where on the schedule of a ``run_iterations``-step run a
            call begins (defaults 0 and ``start_iteration + iterations``: the call is the whole run).
            To continue a ``T``-step run from rewound weights ``W_k``, train ``iterations=T - k`` with
            ``start_iteration=k``; to take ``W_k`` from the first ``k`` steps of a ``T``-step run,
            train ``iterations=k`` with ``run_iterations=T``. Milestones are iterations of the whole
            run; ``History`` iterations, ``eval_every`` and ``snapshot_at`` count the call's steps.
        eval_every: evaluate every this many steps (and at the end); default: once per epoch.
        snapshot_at: iterations ``k`` at which to keep a copy of the weights (``0`` = before training).
        device: where to train; ``None`` or ``"auto"``: :func:`default_device` (CUDA, then MPS, then
            the CPU). The model is moved back to the device it came from when training ends, so
            inputs on that device (a notebook's CPU tensors) work with it after a GPU run.
        progress: show a ``tqdm`` progress bar.
    """

    iterations: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    l1: float = 0.0
    lr_schedule: str = "step"
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    start_iteration: int = 0
    run_iterations: int | None = None
    eval_every: int | None = None
    snapshot_at: tuple[int, ...] = ()
    device: torch.device | str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        """Check every field, naming a bad one with its value, and normalise it (counts to ``int``, iterables to sorted tuples)."""
        def put(name, value):
            object.__setattr__(self, name, value)

        if self.iterations is not None and self.epochs is not None:
            raise ValueError(f"give exactly one of iterations or epochs, got iterations={self.iterations!r}, epochs={self.epochs!r}")
        for name in ("iterations", "epochs", "run_iterations", "eval_every"):
            if getattr(self, name) is not None:
                put(name, check_positive_int(name, getattr(self, name)))
        put("batch_size", check_positive_int("batch_size", self.batch_size))
        put("start_iteration", check_positive_int("start_iteration", self.start_iteration, allow_zero=True))
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("lr", "momentum", "weight_decay", "l1", "lr_gamma"):
            put(name, check_number(name, getattr(self, name)))
            if getattr(self, name) < 0 or (name == "lr" and self.lr == 0):
                raise ValueError(f"{name} must be {'> 0' if name == 'lr' else '>= 0'}, got {getattr(self, name)!r}")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        put("lr_milestones", tuple(sorted(check_positive_int("lr_milestones", m) for m in self.lr_milestones)))
        if self.lr_schedule == "cosine" and self.lr_milestones:
            raise ValueError(f"lr_milestones apply only to lr_schedule='step', got lr_schedule='cosine' with "
                             f"lr_milestones={list(self.lr_milestones)!r}")
        put("snapshot_at", tuple(sorted({check_positive_int("snapshot_at", k, allow_zero=True) for k in self.snapshot_at})))


def train_settings(settings: TrainSettings | None = None, **overrides) -> TrainSettings:
    """Return ``settings`` (default ``TrainSettings()``) with ``overrides`` applied, as a plain :class:`TrainSettings`.

    ``settings`` may be any instance of a subclass (an experiment's config); only the training fields are kept.

    Raises:
        TypeError: ``settings`` is not a ``TrainSettings``, or an override names no training setting.
    """
    if settings is not None and not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings or None, got {type(settings).__name__}")
    names = [f.name for f in fields(TrainSettings)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"unknown training setting {', '.join(map(repr, unknown))}; the settings are: {', '.join(names)}")
    return TrainSettings(**{**({} if settings is None else {name: getattr(settings, name) for name in names}), **overrides})


class _Plan(NamedTuple):
    """The step counts of one training call, resolved against its data."""

    total: int         # optimiser steps of this call
    eval_every: int
    run_total: int     # steps of the whole run this call is part of (the schedule's length)


def _plan(settings: TrainSettings, data: Dataset) -> _Plan:
    steps_per_epoch = -(-len(data.y_train) // settings.batch_size)
    if settings.iterations is None and settings.epochs is None:
        raise ValueError("give exactly one of iterations or epochs, got iterations=None, epochs=None")
    total = settings.iterations if settings.iterations is not None else settings.epochs * steps_per_epoch
    late = [k for k in settings.snapshot_at if k > total]
    if late:
        raise ValueError(f"snapshot_at must lie in [0, {total}] (0 = before training, {total} = the end), got {late}")
    run_total = settings.start_iteration + total if settings.run_iterations is None else settings.run_iterations
    if run_total < settings.start_iteration + total:
        raise ValueError(f"run_iterations must be at least start_iteration + the steps of this call = "
                         f"{settings.start_iteration + total}, got {settings.run_iterations!r}")
    return _Plan(total, settings.eval_every or steps_per_epoch, run_total)


def train(model: nn.Module, data: Dataset, settings: TrainSettings | None = None, *,
          mask: dict[str, torch.Tensor] | None = None, data_seed: int = 0, **overrides) -> History:
    """Train ``model`` in place with minibatch SGD or Adam on ``data``; return its :class:`History`.

    Args:
        model: the network; its current weights are the starting point.
        data: a :class:`~lecturelib.data.Dataset`.
        settings, **overrides: a :class:`TrainSettings` and/or its fields as keywords
            (``train(net, data, iterations=200, lr=1e-2)``); the keywords win.
        mask: ``{parameter name: bool tensor}``; those weights start at 0, receive no gradient and
            are re-zeroed after each optimiser step, so momentum, Adam's moments and weight decay
            cannot revive them.
        data_seed: seed of the order of the minibatches (the SGD noise *u*: the same model
            trained with two data seeds follows two different paths).

    Raises:
        ValueError / TypeError: a bad setting or mask, named with its value (``lr`` NaN or <= 0,
            ``snapshot_at`` outside ``[0, iterations]``, …), before any step.
        FloatingPointError: the loss became NaN or infinite — training diverged; lower ``lr``.
    """
    settings = train_settings(settings, **overrides)
    plan = _plan(settings, data)
    data_seed = check_positive_int("data_seed", data_seed, allow_zero=True)
    device = resolve_device(settings.device)
    home = next(model.parameters()).device   # handed back there: a notebook's CPU tensors keep working on a GPU machine
    model.to(device)
    pruned, keeps = _prepare_mask(model, mask, device)
    batches = _minibatch_order(len(data.y_train), settings.batch_size, plan.total, data_seed)

    x_train, y_train = data.x_train.to(device), data.y_train.to(device)

    def loss_of_step() -> torch.Tensor:   # shape (1,): the loop below trains N networks, here one
        batch = next(batches).to(device)
        return nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).view(1)

    try:
        return _fit([model], dict(model.named_parameters()), loss_of_step, pruned, keeps, data, settings, plan)[0]
    finally:
        model.eval()
        model.to(home)


def _fit(models: list[nn.Module], params: dict[str, torch.Tensor], losses_of_step: Callable[[], torch.Tensor],
         pruned: list[torch.Tensor], keeps: list[torch.Tensor], data: Dataset, settings: TrainSettings, plan: _Plan) -> list[History]:
    """The training loop of :func:`train` and :func:`train_many`: ``plan.total`` optimiser steps over ``params``.

    ``losses_of_step()`` returns the loss of each of the ``N`` networks on its next minibatch, shape
    ``(N,)``; their sum is minimised (each network's gradient is that of its own loss). Pruned
    parameters (``pruned[i] * keeps[i]``) are held at exactly 0. Returns one :class:`History` per model.
    """
    n = len(models)
    _zero_pruned(pruned, keeps)
    opt = make_optimizer(params.values(), settings.optimizer, lr=settings.lr, momentum=settings.momentum,
                         weight_decay=settings.weight_decay)
    schedule = lr_scheduler(opt, settings, plan.run_total)
    weights = [param for name, param in params.items() if name.endswith("weight")]
    histories = [History() for _ in models]
    running, count = [0.0] * n, 0
    bar = None   # a bar only when asked: an experiment draws one over all its trainings (listening_to_steps)
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.total, desc="training" if n == 1 else f"training {n} networks", leave=False)
    for model in models:
        model.train()
    for step in range(plan.total):
        if step in settings.snapshot_at:
            for model, history in zip(models, histories):
                history.snapshots[step] = _copy_state(model)
        losses = losses_of_step()
        for i, value in enumerate(losses.tolist()):
            if not math.isfinite(value):
                who = "the" if n == 1 else f"network {i}'s"
                raise FloatingPointError(f"training diverged: {who} loss is {value} at "
                                         f"iteration {settings.start_iteration + step + 1} with lr={settings.lr!r} "
                                         f"({settings.optimizer}); lower lr")
            running[i] += value
        count += 1
        loss = losses.sum()
        if settings.l1:
            loss = loss + settings.l1 * sum(w.abs().sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if pruned:  # no gradient into pruned weights, and re-zero them after the step (momentum, decay)
            torch._foreach_mul_([param.grad for param in pruned], keeps)
        opt.step()
        schedule.step()
        _zero_pruned(pruned, keeps)
        if bar is not None:
            bar.update()
        for callback in _STEP_LISTENERS:
            callback(n)
        if (step + 1) % plan.eval_every == 0 or step + 1 == plan.total:
            for i, (model, history) in enumerate(zip(models, histories)):
                _record(history, model, data, step + 1, running[i] / count)
            running, count = [0.0] * n, 0
    if plan.total in settings.snapshot_at:
        for model, history in zip(models, histories):
            history.snapshots[plan.total] = _copy_state(model)
    if bar is not None:
        bar.close()
    return histories


def _minibatch_order(n_examples: int, batch_size: int, total: int, data_seed: int) -> Iterator[torch.Tensor]:
    """Yield the example indices of each of ``total`` steps: a new permutation drawn from ``data_seed``'s generator at each epoch's start."""
    generator = torch.Generator().manual_seed(data_seed)
    steps_per_epoch = -(-n_examples // batch_size)
    order = torch.empty(0, dtype=torch.long)
    for step in range(total):
        if step % steps_per_epoch == 0:
            order = torch.randperm(n_examples, generator=generator)
        yield order[(step % steps_per_epoch) * batch_size:(step % steps_per_epoch + 1) * batch_size]


def train_many(models: Sequence[nn.Module], data: Dataset, settings: TrainSettings | None = None, *,
               masks: Sequence[dict[str, torch.Tensor] | None] | None = None,
               data_seeds: Sequence[int] | None = None, **overrides) -> list[History]:
    """Train several networks of one architecture together; return one :class:`History` per network.

    Each network ends where :func:`train` takes it with the same settings, its own mask and its own
    data seed: the same minibatches, optimiser, schedule, penalties, evaluations and snapshots. Only
    the arithmetic is arranged differently. The ``N`` networks' weights are stacked into tensors of
    shape ``(N, *shape)``, and one step runs every layer once for all of them — a linear layer is
    one batched product ``torch.baddbmm(b, W, h)`` of weights ``W`` (N, out, in) and activations
    ``h`` (N, in, batch), a convolution one grouped convolution with ``N`` times the groups — then one optimiser step over
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
        settings, **overrides: as in :func:`train`, the same for every network (each network's
            :class:`History` keeps its own snapshots).
        masks: one mask (or ``None``) per network, as ``train``'s ``mask``; default: no masks.
        data_seeds: one minibatch-order seed per network, as ``train``'s ``data_seed``; default: 0 for all.

    Raises:
        TypeError: a model is not such an ``nn.Sequential``.
        ValueError: the models differ in architecture or share weights; ``masks`` or ``data_seeds``
            do not hold one entry per model; a setting :func:`train` refuses.
        FloatingPointError: a network's loss is not finite.
    """
    settings = train_settings(settings, **overrides)
    plan = _plan(settings, data)
    models = list(models)
    layers = _stacked_layers(models)
    n = len(models)
    masks = [None] * n if masks is None else list(masks)
    data_seeds = [0] * n if data_seeds is None else [check_positive_int("data_seeds", s, allow_zero=True) for s in data_seeds]
    check_one_each("model", n, masks=masks, data_seeds=data_seeds)
    device = resolve_device(settings.device)

    homes = [next(model.parameters()).device for model in models]
    own = [dict(model.to(device).named_parameters()) for model in models]
    stacked = {name: torch.stack([params[name].detach() for params in own]).requires_grad_() for name in own[0]}
    originals = [{name: param.data for name, param in params.items()} for params in own]
    pruned, keeps = _stacked_mask(models, masks, stacked, device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    orders = [_minibatch_order(len(y_train), settings.batch_size, plan.total, seed) for seed in data_seeds]

    def losses_of_step() -> torch.Tensor:
        batch = torch.cat([next(order) for order in orders]).to(device)            # N minibatches, one after another
        return _stacked_losses(layers, stacked, x_train.index_select(0, batch).unflatten(0, (n, -1)),
                               y_train.index_select(0, batch).view(n, -1))          # (N,)

    try:
        for i, params in enumerate(own):   # each model's weights become views of its slice: evaluate and snapshots read them
            for name, param in params.items():
                param.data = stacked[name].detach()[i]
        return _fit(models, stacked, losses_of_step, pruned, keeps, data, settings, plan)
    finally:   # every model gets its own storage back, holding its trained weights
        with torch.no_grad():
            for i, params in enumerate(own):
                for name, param in params.items():
                    originals[i][name].copy_(stacked[name][i])
                    param.data = originals[i][name]
        for model, home in zip(models, homes):
            model.eval()
            model.to(home)


_CONVOLUTIONS = {nn.Conv1d: nn.functional.conv1d, nn.Conv2d: nn.functional.conv2d}
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Identity)


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
    """Return each network's mean cross-entropy, shape ``(N,)``, on its own minibatch ``x`` (N, B, …) with labels ``y`` (N, B).

    The activations change layout so that every layer with weights is one batched product over the
    weights as they are stored — no transposed copy of a weight, forward or backward. Around layers
    without weights (pooling, flatten) they are rows ``(N, B, …)``, as in the input; into a linear
    layer or a 1-D convolution they are swapped to ``(N, features or C, B, …)``:

    * a linear layer is then ``W @ h + b`` with ``W`` (N, out, in);
    * a 1-D convolution turns every window of every example into a column, so it is ``W @ windows``
      with ``W`` (N, out, C·kernel). 2-D convolutions stay grouped convolutions (unfolding 3×3 windows
      copies every activation nine times, which was slower here than the grouped kernel).
    """
    n, b = y.shape
    h, swapped = x, False
    for name, layer in layers:
        weight, bias = stacked.get(f"{name}.weight"), stacked.get(f"{name}.bias")
        if isinstance(layer, _ELEMENTWISE):   # the same in either layout
            h = layer(h)
            continue
        windows = type(layer) is nn.Conv1d and layer.groups == 1 and not isinstance(layer.padding, str)
        if swapped != (isinstance(layer, nn.Linear) or windows):
            h, swapped = h.transpose(1, 2), not swapped
        if isinstance(layer, nn.Linear):      # one batched product: (N, out, in) @ (N, in, B) + (N, out, 1)
            h = _affine(weight, bias, h)
        elif windows:
            h = _conv1d_windows(h, weight, bias, layer)
        elif type(layer) in _CONVOLUTIONS:    # the N networks' channels side by side, one group (set) per network
            out = _CONVOLUTIONS[type(layer)](h.transpose(0, 1).flatten(1, 2), weight.flatten(0, 1),
                                             None if bias is None else bias.flatten(), layer.stride, layer.padding,
                                             layer.dilation, layer.groups * n)
            h = out.unflatten(1, (n, -1)).transpose(0, 1)
        else:                                 # a layer without weights works on each example alone
            h = layer(h.flatten(0, 1)).unflatten(0, (n, b))
    logits = h if swapped else h.transpose(1, 2)   # (N, classes, B)
    return nn.functional.cross_entropy(logits, y, reduction="none").mean(1)


def _affine(weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """``weight @ h + bias`` for stacked ``weight`` (N, out, in), ``h`` (N, in, M) and ``bias`` (N, out)."""
    return torch.bmm(weight, h) if bias is None else torch.baddbmm(bias.unsqueeze(2), weight, h)


def _conv1d_windows(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer: nn.Conv1d) -> torch.Tensor:
    """N stacked 1-D convolutions of ``h`` (N, C, B, L) with ``weight`` (N, out, C, kernel): return (N, out, B, L_out).

    Tap ``j`` of the kernel reads every ``stride``-th position from ``j · dilation`` on: stacking the
    ``kernel`` strided slices gives the windows (N, C, kernel, B, L_out) in the order of the weight's
    (C, kernel) entries. (Slices, not ``Tensor.unfold``: unfold's backward was the slowest step here.)
    """
    (kernel,), (stride,), (dilation,), (padding,) = layer.kernel_size, layer.stride, layer.dilation, layer.padding
    n, c, b, _ = h.shape
    padded = nn.functional.pad(h, (padding, padding))
    length = (padded.shape[3] - dilation * (kernel - 1) - 1) // stride + 1
    windows = torch.stack([padded[..., j * dilation:j * dilation + stride * (length - 1) + 1:stride] for j in range(kernel)], dim=2)
    return _affine(weight.flatten(2), bias, windows.view(n, c * kernel, b * length)).view(n, -1, b, length)


def lr_scheduler(opt: torch.optim.Optimizer, settings: TrainSettings, run_total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Return the scheduler of ``opt``'s learning rate for a call that starts at ``settings.start_iteration`` of a ``run_total``-step run.

    It sets the first step's rate now; step it after each optimiser step. ``"step"``: PyTorch's
    ``MultiStepLR`` over the milestones still ahead, from the rate the milestones already passed
    have left. ``"cosine"``: ``lr * (1 + cos(pi * t / run_total)) / 2`` at iteration ``t`` of the
    run, a ``LambdaLR`` (``CosineAnnealingLR`` updates the rate recursively, which drifts from this
    closed form by float rounding). A function of the iteration alone, so networks trained together
    share it.

    Examples:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> schedule = lr_scheduler(opt, TrainSettings(lr=0.1, lr_schedule="cosine"), run_total=4)
        >>> rates = []
        >>> for _ in range(4):
        ...     rates.append(round(opt.param_groups[0]["lr"], 4)); opt.step(); schedule.step()
        >>> rates
        [0.1, 0.0854, 0.05, 0.0146]
    """
    start = settings.start_iteration
    if settings.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (1.0 + math.cos(math.pi * (start + t) / run_total)) / 2.0)
    for group in opt.param_groups:
        for _ in (m for m in settings.lr_milestones if m <= start):   # one multiplication per milestone, as MultiStepLR
            group["lr"] *= settings.lr_gamma
    return torch.optim.lr_scheduler.MultiStepLR(opt, [m - start for m in settings.lr_milestones if m > start], settings.lr_gamma)


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
