"""Self-checks for the exercises: each runs a student's function on cases of its own and says
*what* is wrong (a shape, a sparsity off by how much, a pruned weight that came back…), not only
that something is.

Every ``check_*`` returns ``True`` and prints one line when all cases pass, and raises
:class:`CheckFailed` with an explanation otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which case and what differs."""


def _passed(what: str, cases: int) -> bool:
    print(f"✓ {what}: all {cases} cases pass.")
    return True


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


def check_prune_smallest(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
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
