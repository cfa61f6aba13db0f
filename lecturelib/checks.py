"""Self-checks for the exercises: each runs a student's function on cases of its own and says
*what* is wrong (a shape, a sparsity off by how much, a pruned weight that came back…), not only
that something is.

Every ``check_*`` prints one line when all cases pass (and returns ``None``), and raises
:class:`CheckFailed` with an explanation otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which case and what differs."""


def _passed(what: str, cases: int) -> None:
    print(f"✓ {what}: all {cases} cases pass.")


def _call(fn: Callable, case: str, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(f"{fn.__name__} is not implemented yet: replace `raise NotImplementedError` with your code.") from None
    except Exception as error:  # the student's code crashed: say on which case
        raise CheckFailed(f"{fn.__name__} raised {type(error).__name__}: {error} — on the case {case}.") from None


def _expect_tensor(result, expected_shape, name: str, case: str) -> None:
    if not isinstance(result, torch.Tensor):
        raise CheckFailed(f"{name} should return a torch.Tensor, got {type(result).__name__} — on the case {case}.")
    if tuple(result.shape) != tuple(expected_shape):
        raise CheckFailed(f"{name} returned shape {tuple(result.shape)}, expected {tuple(expected_shape)} — on the case {case}.")


def check_prune_smallest(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(w, ratio)``: a copy of the 1-D weights ``w`` with the ``round(ratio * len(w))`` smallest ``|w|`` set to 0."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([0.5, -0.1, 2.0, -3.0, 0.05]), 0.4),
        (torch.randn(64, generator=generator), 0.5),
        (torch.randn(100, generator=generator), 0.0),
        (torch.randn(100, generator=generator), 0.9),
    ]
    for w, ratio in cases:
        case = f"w of length {len(w)}, ratio={ratio}"
        original = w.clone()
        result = _call(fn, case, w.clone(), ratio)
        _expect_tensor(result, w.shape, fn.__name__, case)
        n_prune = round(ratio * len(w))
        zeros = int((result == 0).sum())
        if zeros != n_prune:
            raise CheckFailed(
                f"{case}: {zeros} weights are zero, expected round({ratio} * {len(w)}) = {n_prune} "
                f"(sparsity {zeros / len(w):.0%} instead of {n_prune / len(w):.0%})."
            )
        kept = result != 0
        if not torch.equal(result[kept], original[kept]):
            raise CheckFailed(f"{case}: the weights you kept changed value; pruning must only set weights to 0.")
        if n_prune and original.abs()[~kept].max() > original.abs()[kept].min():
            raise CheckFailed(
                f"{case}: a weight with |w| = {original.abs()[~kept].max():.3f} was pruned while one with "
                f"|w| = {original.abs()[kept].min():.3f} was kept — prune by the size |w|, not by the signed value."
            )
    return _passed(fn.__name__, len(cases))


def check_flatten_feature_indices(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Check ``fn(keep, height, width)``: the input features of the ``Linear`` after ``Flatten`` that survive
    when only the channels ``keep`` (sorted 1-D indices) of a ``(C, height, width)`` feature map are kept.

    ``nn.Flatten`` lays a ``(C, H, W)`` map out channel by channel, so channel ``c`` owns the contiguous
    block of features ``c*H*W … (c+1)*H*W - 1``; the answer is those blocks, in increasing order.
    """
    cases = [
        (torch.tensor([0, 2]), 2, 2),
        (torch.tensor([1]), 1, 1),
        (torch.tensor([0, 3, 5]), 4, 4),
        (torch.tensor([2, 7]), 2, 3),
    ]
    for keep, height, width in cases:
        case = f"keep={keep.tolist()}, height={height}, width={width}"
        hw = height * width
        expected = (keep[:, None] * hw + torch.arange(hw)).flatten()
        result = _call(fn, case, keep.clone(), height, width)
        if isinstance(result, torch.Tensor) and result.numel() == len(keep) and hw > 1:
            raise CheckFailed(
                f"{case}: you returned {result.numel()} indices, one per kept channel; after Flatten every channel c "
                f"owns height*width = {hw} features (c*{hw} … c*{hw}+{hw - 1}), so expect {expected.numel()} indices."
            )
        _expect_tensor(result, expected.shape, fn.__name__, case)
        if result.dtype.is_floating_point or result.dtype == torch.bool:
            raise CheckFailed(f"{case}: the indices have dtype {result.dtype}; return integer indices (torch.long).")
        if torch.equal(result.long(), expected):
            continue
        if torch.equal(result.long().sort().values, expected):
            raise CheckFailed(
                f"{case}: these are the right features but in the wrong order ({result.tolist()[:8]}…); keep them "
                f"increasing, channel block after channel block, so fc1's columns keep the order Flatten produces."
            )
        i = int(torch.nonzero(result.long() != expected)[0])
        got, want = int(result[i]), int(expected[i])
        hint = ""
        if len(result) > 1 and hw > 1 and int(result[1] - result[0]) != 1:
            hint = (" Consecutive features of one channel must be adjacent: Flatten writes (C, H, W) channel-first, "
                    "not pixel-first (H, W, C).")
        raise CheckFailed(
            f"{case}: position {i} holds feature {got} (channel {got // hw}, pixel {got % hw}), expected feature {want} "
            f"(channel {want // hw}, pixel {want % hw}); channel c's features are c*{hw} … c*{hw}+{hw - 1}.{hint}"
        )
    return _passed(fn.__name__, len(cases))
