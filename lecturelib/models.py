"""The course's two networks and how big they are (the MLP from Chapter 1, notebooks/01_weighted_sum.ipynb;
the CNN in Chapter 7, notebooks/07_structured_pruning.ipynb).

* :func:`mlp` — LeNet-300-100 (Frankle & Carbin 2019): flatten → 300 → 100 → classes, ReLU.
* :func:`cnn` — a small Conv-2 / Conv-4 style network: blocks of two 3x3 convolutions and a 2x2
  max-pool, then two linear layers. It works on 8x8, 28x28 and 32x32 inputs.
* :func:`cnn1d` — the small 1-D CNN of the MNIST-1D paper (Greydanus 2020): three strided
  convolutions with ReLU, then one linear layer; for sequences ``(C, L)`` such as MNIST-1D's ``(1, 40)``.

Layers are named (``fc1``, ``conv1``…) so parameter names such as ``"fc1.weight"`` are stable
keys for masks.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive_int
from .pruning import check_mask

_SEEDING = threading.RLock()   # held while a network's initial weights are drawn from the global generator

MODELS = ("mlp", "cnn", "cnn1d")


def mlp(
    input_shape: Sequence[int],
    num_classes: int = 10,
    hidden: Sequence[int] = (300, 100),
    *,
    seed: int | None = None,
) -> nn.Sequential:
    """Return a fully connected ReLU network ``prod(input_shape) → *hidden → num_classes``.

    Args:
        input_shape: shape of one input, e.g. ``(1, 8, 8)``; it is flattened.
        num_classes: number of outputs (logits).
        hidden: widths of the hidden layers; ``(300, 100)`` is LeNet-300-100.
        seed: if given, the initial weights are drawn from this seed (PyTorch's default init).
    """
    num_classes = check_positive_int("num_classes", num_classes)
    hidden = [check_positive_int("hidden width", width) for width in hidden]
    widths = [int(torch.tensor(input_shape).prod()), *hidden, num_classes]
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    with _seeded(seed):
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            layers.append((f"fc{i}", nn.Linear(n_in, n_out)))
            if i < len(widths) - 1:
                layers.append((f"relu{i}", nn.ReLU()))
    return nn.Sequential(OrderedDict(layers))


def cnn(
    input_shape: Sequence[int],
    num_classes: int = 10,
    channels: Sequence[int] = (16, 32),
    hidden: int = 64,
    *,
    seed: int | None = None,
) -> nn.Sequential:
    """Return a small VGG-like CNN: pairs of 3x3 convolutions, each pair followed by a 2x2 max-pool.

    ``channels=(16, 32)`` gives Conv-2-like ``conv1(16) conv2(32) pool``; ``(16, 16, 32, 32)`` gives
    Conv-4-like ``conv1 conv2 pool conv3 conv4 pool``. Padding keeps the size inside a block, so an
    ``H x W`` input leaves the convolutions as ``H / 2**blocks`` (8x8 with two blocks → 2x2).

    Args:
        input_shape: ``(C, H, W)`` of one image; H and W must be divisible by ``2**blocks``.
        num_classes: number of logits.
        channels: output channels of each convolution (an even count).
        hidden: width of the hidden linear layer ``fc1``.
        seed: if given, the initial weights are drawn from this seed.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)!r}")
    if len(channels) == 0 or len(channels) % 2:
        raise ValueError(f"channels must hold an even, non-zero number of widths, got {tuple(channels)!r}")
    c, h, w = input_shape
    blocks = len(channels) // 2
    if h % 2**blocks or w % 2**blocks:
        raise ValueError(f"input_shape {tuple(input_shape)} is not divisible by 2**{blocks} for {blocks} pooling blocks")
    layers: list[tuple[str, nn.Module]] = []
    n_in = c
    with _seeded(seed):
        for i, n_out in enumerate(channels, start=1):
            layers += [(f"conv{i}", nn.Conv2d(n_in, n_out, kernel_size=3, padding=1)), (f"relu{i}", nn.ReLU())]
            if i % 2 == 0:
                layers.append((f"pool{i // 2}", nn.MaxPool2d(2)))
            n_in = n_out
        flat = n_in * (h // 2**blocks) * (w // 2**blocks)
        layers += [
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(flat, hidden)),
            ("relu_fc1", nn.ReLU()),
            ("fc2", nn.Linear(hidden, num_classes)),
        ]
    return nn.Sequential(OrderedDict(layers))


def cnn1d(
    input_shape: Sequence[int],
    num_classes: int = 10,
    channels: int = 25,
    *,
    seed: int | None = None,
) -> nn.Sequential:
    """Return the MNIST-1D paper's 1-D CNN: three strided convolutions with ReLU, then one linear layer.

    ``conv1`` (kernel 5, stride 2, padding 1), ``conv2`` and ``conv3`` (kernel 3, stride 2, padding 1),
    each ``channels`` wide, then ``fc1`` to the logits. Each convolution about halves the length:
    MNIST-1D's 40 values become 19, 10 and 5, so ``fc1`` reads ``25 * 5 = 125`` features
    (Greydanus 2020, "Scaling down deep learning").

    Args:
        input_shape: ``(C, L)`` of one sequence, ``L >= 3``.
        num_classes: number of logits.
        channels: output channels of each convolution.
        seed: if given, the initial weights are drawn from this seed.

    Examples:
        >>> cnn1d((1, 40), seed=0)(torch.zeros(2, 1, 40)).shape
        torch.Size([2, 10])
    """
    if len(input_shape) != 2:
        raise ValueError(f"input_shape must be (C, L) for cnn1d, got {tuple(input_shape)!r}")
    c, length = (check_positive_int("input_shape entry", int(n)) for n in input_shape)
    num_classes = check_positive_int("num_classes", num_classes)
    channels = check_positive_int("channels", channels)
    specs = [(5, 2, 1), (3, 2, 1), (3, 2, 1)]   # (kernel, stride, padding) of conv1..conv3
    layers: list[tuple[str, nn.Module]] = []
    n_in = c
    with _seeded(seed):
        for i, (kernel, stride, padding) in enumerate(specs, start=1):
            length = (length + 2 * padding - kernel) // stride + 1
            if length < 1:
                raise ValueError(f"input_shape {tuple(input_shape)!r} is too short for cnn1d's three strided convolutions")
            layers += [(f"conv{i}", nn.Conv1d(n_in, channels, kernel, stride=stride, padding=padding)), (f"relu{i}", nn.ReLU())]
            n_in = channels
        layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(channels * length, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def build_model(name: str, input_shape: Sequence[int], num_classes: int = 10, *, seed: int | None = None, **kwargs) -> nn.Module:
    """Return ``mlp(...)``, ``cnn(...)`` or ``cnn1d(...)`` by name (one of :data:`MODELS`)."""
    check_choice("model name", name, MODELS)
    return {"mlp": mlp, "cnn": cnn, "cnn1d": cnn1d}[name](input_shape, num_classes, seed=seed, **kwargs)


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Draw initial weights from ``seed`` inside the block, leaving the global generator untouched."""
    if seed is None:
        yield
        return
    with _SEEDING, torch.random.fork_rng(devices=[]):   # one seeded draw at a time (machine.side_by_side runs jobs in threads)
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def eval_mode(model: nn.Module, *, training: Sequence[nn.Module] = ()) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (and the submodules ``training`` in training mode) inside the ``with`` block.

    Every module's own mode is restored afterwards, also when the block raises.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for module in training:
        module.train()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode


def count_parameters(model: nn.Module, mask: dict[str, torch.Tensor] | None = None) -> int:
    """Return the number of parameters; with a mask, the number of *unpruned* ones.

    Raises:
        KeyError / ValueError / TypeError: ``mask`` names a parameter the model lacks, has a wrong
            shape or holds values other than 0/1 (:func:`lecturelib.pruning.check_mask`).
    """
    if mask is not None:
        check_mask(model, mask)
    return sum(int(mask[name].sum()) if mask is not None and name in mask else param.numel() for name, param in model.named_parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int], mask: dict[str, torch.Tensor] | None = None) -> int:
    """Return the multiply-accumulates (MACs) of one forward pass of one input of ``input_shape``.

    Counted for ``nn.Linear`` (``in * out``) and ``nn.Conv1d``/``nn.Conv2d`` (``C_out * C_in/groups * kH * kW * H_out * W_out``,
    one spatial size fewer for 1-D);
    activations, pooling and biases are ignored (they are a few percent). With a mask, only the
    unpruned weights count — the work an ideal sparse kernel would do. A bad ``mask`` raises as in
    :func:`count_parameters`.
    """
    if mask is not None:
        check_mask(model, mask)
    names = {module: name for name, module in model.named_modules()}
    flops = 0

    def hook(module, _inputs, output):
        nonlocal flops
        weight_name = f"{names[module]}.weight" if names[module] else "weight"
        alive = int(mask[weight_name].sum()) if mask is not None and weight_name in mask else module.weight.numel()
        flops += alive * (output.shape[2:].numel() if isinstance(module, (nn.Conv1d, nn.Conv2d)) else 1)   # × output positions

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    try:
        with eval_mode(model), torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return flops
