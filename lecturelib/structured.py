"""Structured (channel / filter) pruning: score whole filters, mask them, and really remove them
(Chapter 7, notebooks/07_structured_pruning.ipynb).

Unstructured pruning (:mod:`lecturelib.pruning`) zeroes single weights and leaves the tensor
shapes alone. *Channel pruning* removes whole output channels of a convolution — filter ``c`` of
``convK`` is ``convK.weight[c]`` (shape ``(C_in, kH, kW)``) with its bias ``convK.bias[c]`` — so the
next layer loses the matching inputs, and the network can be rebuilt smaller (Li et al. 2017).

* :func:`channel_scores` — L1 / L2 norm of every filter, ``{conv weight name: (C_out,) tensor}``.
* :func:`channel_mask` — a :data:`~lecturelib.pruning.Mask` that zeroes the weakest filters *and* their biases.
* :func:`kept_channels` — the surviving channel indices of such a mask, ``{conv module name: index tensor}``.
* :func:`prune_channels` — a new, smaller ``nn.Sequential`` without the removed channels; it computes
  exactly what the masked network computes.
* :func:`conv_widths` — the output channels of each convolution (to build the same architecture from scratch).

A *sparsity* is the share of a layer's output channels that is removed: ``sparsity`` of ``C``
channels removes ``round(sparsity * C)`` of them, and at least one channel survives in every layer
(the rules of :mod:`lecturelib.pruning`, whose :func:`~lecturelib.pruning.keep_largest` chooses them).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .pruning import Mask, check_mask, keep_largest, kept_count, layer_sparsities, row_norms

# Modules that act on each channel separately (or not at all): a removed channel stays removed through them.
_CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity)


def conv_layers(model: nn.Module) -> "OrderedDict[str, nn.Conv2d]":
    """Return the ``nn.Conv2d`` modules of ``model`` by module name (``"conv1"``…), in forward order."""
    return OrderedDict((name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d))


def conv_widths(model: nn.Module) -> tuple[int, ...]:
    """Return the number of output channels of each convolution, e.g. ``(16, 32)``.

    ``models.cnn(input_shape, channels=conv_widths(small))`` builds the pruned architecture afresh,
    the "trained from scratch" control of Liu et al. (2019).
    """
    return tuple(conv.out_channels for conv in conv_layers(model).values())


def channel_scores(model: nn.Module, norm: int = 1) -> dict[str, torch.Tensor]:
    """Return the importance of every output channel (filter) of every convolution.

    The score of filter ``c`` is its L1 norm ``Σ |W[c]|`` (``norm=1``, Li et al. 2017) or its L2
    norm ``sqrt(Σ W[c]²)`` (``norm=2``), summed over ``(C_in, kH, kW)``; the bias is not scored.

    Args:
        model: a network with ``nn.Conv2d`` layers.
        norm: 1 or 2.

    Returns:
        ``{"conv1.weight": tensor of shape (C_out,), …}`` on the CPU, one entry per convolution.

    Raises:
        ValueError: ``norm`` is not 1 or 2, or the model has no convolution.
    """
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"channel_scores needs a model with nn.Conv2d layers; {type(model).__name__} has none")
    return {f"{name}.weight": row_norms(conv.weight, norm) for name, conv in convs.items()}


def channel_mask(
    model: nn.Module,
    sparsity: float | Mapping[str, float],
    *,
    norm: int = 1,
    names: Iterable[str] | None = None,
) -> Mask:
    """Return a mask that removes the lowest-norm filters of each convolution (layer by layer).

    For a removed channel ``c`` of ``convK`` the mask zeroes the whole filter ``convK.weight[c]``
    and the bias ``convK.bias[c]``, so the channel's output is exactly 0 after the ReLU. The filters
    are chosen by :func:`lecturelib.pruning.keep_largest`: ties go in channel order, and a layer
    keeps at least its largest filter.

    Args:
        model: the (trained) network whose filters are scored.
        sparsity: share of output channels to remove in every chosen convolution, in [0, 1), or
            ``{conv weight name: sparsity}`` per layer (layers missing from the dict are not pruned).
        norm: 1 (L1, Li et al. 2017) or 2 (L2) filter norms, see :func:`channel_scores`.
        names: conv weight names to prune (default: all convolutions).

    Returns:
        ``{"convK.weight": bool (C_out, C_in, kH, kW), "convK.bias": bool (C_out,), …}``; ``True`` keeps.

    Raises:
        TypeError / ValueError: a sparsity that is not a number in [0, 1).
        KeyError: a name that is not a convolution's weight.
    """
    scores = channel_scores(model, norm)
    names = list(scores) if names is None else list(names)
    for name in names:
        if name not in scores:
            raise KeyError(f"{name!r} is not the weight of a convolution; convolutions: {', '.join(scores)}")
    params = dict(model.named_parameters())
    mask: Mask = {}
    for name, layer_sparsity in layer_sparsities(sparsity, names).items():
        keep = keep_largest(scores[name], kept_count(layer_sparsity, scores[name].numel()))
        weight = params[name]
        mask[name] = keep.view(-1, *([1] * (weight.dim() - 1))).expand_as(weight).clone()
        bias_name = name[: -len("weight")] + "bias"
        if bias_name in params:
            mask[bias_name] = keep.clone()
    return mask


def kept_channels(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the indices of the channels a channel mask keeps, ``{conv module name: sorted int64 tensor}``.

    Only convolutions whose weight is in ``mask`` appear. Entries for other parameters are ignored.

    Raises:
        ValueError: a conv weight mask that is not channel-structured (a filter partly kept), one
            that removes every channel, or a removed channel whose bias is not masked too (its
            output would be ``relu(bias)``, not 0, so removing it would change the network).
    """
    check_mask(model, mask)
    params = dict(model.named_parameters())
    kept = {}
    for name in conv_layers(model):
        weight_name, bias_name = f"{name}.weight", f"{name}.bias"
        if weight_name not in mask:
            continue
        rows = mask[weight_name].bool().flatten(1)
        whole = rows.all(1) | ~rows.any(1)
        if not bool(whole.all()):
            partial = torch.nonzero(~whole).flatten().tolist()
            raise ValueError(
                f"mask[{weight_name!r}] is not channel-structured: filters {partial[:8]} are only partly pruned; "
                "prune_channels needs whole filters kept or removed (see channel_mask)"
            )
        keep = rows.all(1)
        if not bool(keep.any()):
            raise ValueError(f"mask[{weight_name!r}] removes every channel of {name!r}; at least one must survive")
        if bias_name in params and not bool(keep.all()):
            bias_keep = mask[bias_name].bool() if bias_name in mask else torch.ones_like(keep)
            alive_bias = torch.nonzero(~keep & bias_keep).flatten().tolist()
            if alive_bias:
                raise ValueError(
                    f"mask removes filters {alive_bias[:8]} of {name!r} but keeps their bias ({bias_name!r}); "
                    "the channels would still output relu(bias) — mask the bias too (channel_mask does)"
                )
        kept[name] = torch.nonzero(keep).flatten()
    return kept


@torch.no_grad()
def prune_channels(model: nn.Sequential, keep: Mapping[str, torch.Tensor | Iterable[int]]) -> nn.Sequential:
    """Return a new, smaller copy of ``model`` whose convolutions keep only the chosen output channels.

    Removing output channel ``c`` of a convolution also removes input channel ``c`` of the next
    convolution, or — after ``nn.Flatten`` — the ``H*W`` input features ``c*H*W … (c+1)*H*W - 1``
    of the next ``nn.Linear``. The result computes exactly what ``model`` computes with the removed
    channels masked (weights *and* biases zero): up to float rounding the outputs are equal.
    ``model`` itself is not changed.

    Args:
        model: an ``nn.Sequential`` of ``Conv2d`` (``groups=1``), channel-wise layers (ReLU, pooling,
            dropout), ``Flatten`` and ``Linear`` — e.g. :func:`lecturelib.models.cnn`.
        keep: either ``{conv module name: indices of the channels to keep}`` (e.g.
            ``{"conv1": torch.tensor([0, 3, 5])}``; convolutions not named keep all channels), or a
            channel mask ``{parameter name: bool tensor}`` such as :func:`channel_mask` returns
            (converted with :func:`kept_channels`).

    Returns:
        A new ``nn.Sequential`` with the same layer names, on ``model``'s device, in ``model``'s train/eval mode.

    Raises:
        TypeError: ``model`` is not an ``nn.Sequential`` or holds a layer this function cannot slice.
        KeyError: ``keep`` names something that is neither a convolution nor a parameter.
        ValueError: empty, duplicate or out-of-range indices, or an unusable mask (see :func:`kept_channels`).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"prune_channels needs an nn.Sequential (e.g. models.cnn), got {type(model).__name__}")
    keep_idx = _keep_indices(model, keep)

    layers: list[tuple[str, nn.Module]] = []
    incoming: torch.Tensor | None = None  # channels of the current activation that survive (None: all)
    n_channels: int | None = None         # channels of the current activation in the original model
    flat_keep: torch.Tensor | None = None  # surviving features after Flatten
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise TypeError(f"prune_channels supports only groups=1 convolutions; {name!r} has groups={module.groups}")
            if flat_keep is not None:
                raise TypeError(f"prune_channels cannot follow a Flatten into a convolution ({name!r})")
            out_idx = keep_idx.get(name)
            new = sliced_layer(module, in_idx=incoming, out_idx=out_idx)
            incoming, n_channels = out_idx, module.out_channels
        elif isinstance(module, nn.Flatten):
            if incoming is not None:
                flat_keep = incoming  # expanded to features by the next Linear, which knows H*W
            incoming = None
            new = copy.deepcopy(module)
        elif isinstance(module, nn.Linear):
            in_idx = None
            if flat_keep is not None:
                if module.in_features % n_channels:
                    raise ValueError(
                        f"{name!r} has {module.in_features} input features, not a multiple of the {n_channels} channels before Flatten"
                    )
                hw = module.in_features // n_channels
                in_idx = (flat_keep[:, None] * hw + torch.arange(hw)).flatten()
                flat_keep = None
            elif incoming is not None:
                raise TypeError(f"prune_channels found Linear {name!r} on pruned channels without a Flatten before it")
            new = sliced_layer(module, in_idx=in_idx)
        elif isinstance(module, _CHANNELWISE):
            new = copy.deepcopy(module)
        else:
            raise TypeError(
                f"prune_channels cannot slice layer {name!r} of type {type(module).__name__}; supported: Conv2d, Linear, "
                f"Flatten and channel-wise layers ({', '.join(t.__name__ for t in _CHANNELWISE)})"
            )
        layers.append((name, new))
    small = nn.Sequential(OrderedDict(layers))
    param = next(model.parameters(), None)
    if param is not None:
        small.to(param.device)
    return small.train(model.training)


def _keep_indices(model: nn.Sequential, keep) -> dict[str, torch.Tensor]:
    if not isinstance(keep, Mapping):
        raise TypeError(f"keep must be a dict {{conv name: indices}} or a channel mask, got {type(keep).__name__}")
    convs = conv_layers(model)
    params = dict(model.named_parameters())
    if keep and all(name in params for name in keep):
        return kept_channels(model, keep)
    result = {}
    for name, indices in keep.items():
        if name not in convs:
            raise KeyError(
                f"keep names {name!r}, which is neither a convolution ({', '.join(convs)}) nor a parameter; "
                "give {conv name: indices} or a channel mask {parameter name: bool tensor}"
            )
        idx = torch.as_tensor(indices)
        n_out = convs[name].out_channels
        if idx.numel() == 0:
            raise ValueError(f"keep[{name!r}] is empty; at least one of the {n_out} channels of {name!r} must survive")
        if idx.dim() != 1 or idx.dtype in (torch.bool, torch.float16, torch.float32, torch.float64):
            raise ValueError(f"keep[{name!r}] must be a 1-D tensor of integer channel indices, got dtype {idx.dtype}, shape {tuple(idx.shape)}")
        if int(idx.min()) < 0 or int(idx.max()) >= n_out:
            raise ValueError(f"keep[{name!r}] holds indices outside 0…{n_out - 1} ({name!r} has {n_out} channels): {idx.tolist()[:8]}")
        idx = idx.long().sort().values
        if bool((idx[1:] == idx[:-1]).any()):
            raise ValueError(f"keep[{name!r}] holds duplicate channel indices: {idx.tolist()[:8]}")
        result[name] = idx
    return result


def sliced_layer(layer: nn.Module, *, in_idx: torch.Tensor | None = None, out_idx: torch.Tensor | None = None) -> nn.Module:
    """Return a copy of ``layer`` (``nn.Conv2d`` or ``nn.Linear``) with only the input channels ``in_idx`` (weight
    columns) and the output channels ``out_idx`` (weight rows and bias entries); ``None`` keeps all. ``layer`` is not changed.

    Examples:
        >>> sliced_layer(nn.Linear(5, 4), in_idx=torch.tensor([0, 2]), out_idx=torch.tensor([1]))
        Linear(in_features=2, out_features=1, bias=True)
    """
    weight, bias = layer.weight.detach(), None if layer.bias is None else layer.bias.detach()
    if in_idx is not None:
        weight = weight[:, in_idx.to(weight.device)]
    if out_idx is not None:
        weight, bias = weight[out_idx.to(weight.device)], None if bias is None else bias[out_idx.to(bias.device)]
    new = copy.deepcopy(layer)
    new.weight = nn.Parameter(weight.clone())
    if bias is not None:
        new.bias = nn.Parameter(bias.clone())
    sizes = ("in_channels", "out_channels") if isinstance(layer, nn.Conv2d) else ("in_features", "out_features")
    for size, value in zip(sizes, weight.shape[1::-1]):
        setattr(new, size, value)
    return new
