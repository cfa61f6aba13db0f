"""Self-checks for the exercises at the end of every chapter (notebooks/NN_*.ipynb; the section
comments below name the chapters): each runs a student's function on cases of its own and says
*what* is wrong (a shape, a sparsity off by how much, a pruned weight that came back…), not only
that something is.

Every ``check_*`` prints one line when all cases pass (and returns ``None``), and raises
:class:`CheckFailed` with an explanation otherwise. A function that still raises
``NotImplementedError`` (the student edition's stub) is *not attempted*: the check prints one line
saying so and returns, so that a student edition runs top to bottom. Each check also records its
outcome, so that the grader (:mod:`lecturelib.grading`) learns it even when a notebook catches the exception.

A chapter never dead-ends on a skipped exercise: later cells call the student's function through
:func:`use_or_fallback`, which falls back to lecturelib's reference implementation with a one-line
note. Predict-then-run questions are checked by :func:`check_prediction`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import torch


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which case and what differs."""


class NotAttempted(CheckFailed):
    """The function still raises ``NotImplementedError``: the student edition's stub, not yet replaced."""


# What the checks concluded, in order, until the grader collects it with report_outcomes().
_OUTCOMES: list[dict[str, str]] = []
GRADER_MARK = "lecturelib-grader-outcomes:"


def _recorded(check: Callable) -> Callable:
    """Wrap a ``check_*`` so that it appends ``{"check", "status", "message"}`` to the outcomes, then returns or raises as before
    — except :class:`NotAttempted`, which it prints as one line and does not raise."""
    @functools.wraps(check)
    def recorded(*args, **kwargs) -> None:
        try:
            check(*args, **kwargs)
        except NotAttempted as skipped:   # the stub: say so, and let the rest of the chapter run
            _OUTCOMES.append({"check": check.__name__, "status": "not attempted", "message": str(skipped)})
            print(f"○ not attempted: {skipped}")
            return None
        except CheckFailed as failure:
            _OUTCOMES.append({"check": check.__name__, "status": "failed", "message": str(failure)})
            raise
        _OUTCOMES.append({"check": check.__name__, "status": "passed", "message": ""})

    return recorded


def report_outcomes() -> None:
    """Print the outcomes of the checks run since the last call as one line, ``GRADER_MARK`` then JSON, and forget them.

    The grader runs this after every cell that calls a check; students never need it.
    """
    print(GRADER_MARK + json.dumps(_OUTCOMES))
    _OUTCOMES.clear()


def _passed(what: str, cases: int) -> None:
    print(f"✓ {what}: all {cases} cases pass.")


def _call(fn: Callable, case: str, *args, unchanged: str = ""):
    """Return ``fn(*args)``: a ``NotImplementedError`` is *not attempted*, any other exception a failure on ``case``.

    With ``unchanged``, the tensors, dicts of tensors and modules among ``args`` must be as they were, or the
    check fails with ``f"{case}: {unchanged}"`` (``{n}`` in it: how many entries changed).
    """
    before = _state(args) if unchanged else None
    try:
        result = fn(*args)
    except NotImplementedError:
        raise NotAttempted(f"{fn.__name__} is not implemented yet: replace `raise NotImplementedError` with your code.") from None
    except Exception as error:  # the student's code crashed: say on which case
        raise CheckFailed(f"{fn.__name__} raised {type(error).__name__}: {error} — on the case {case}.") from None
    if unchanged and (n := _changed(args, before)):
        raise CheckFailed(f"{case}: {unchanged.replace('{n}', str(n))}")
    return result


def _state(value):
    """A copy of the tensors in ``value`` (a tensor, a module's ``state_dict``, or dicts, lists and tuples of them;
    anything else is ``None``), for :func:`_changed` to compare with later."""
    if isinstance(value, torch.nn.Module):
        return _state(value.state_dict())
    if isinstance(value, dict):
        return {name: _state(v) for name, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_state(v) for v in value]
    return value.detach().cpu().clone() if isinstance(value, torch.Tensor) else None


def _changed(value, before) -> int:
    """How many entries of ``value`` differ from ``before``, its :func:`_state` (a tensor of another shape, or a missing one, counts whole)."""
    value = value.state_dict() if isinstance(value, torch.nn.Module) else value
    if isinstance(before, dict):
        return sum(_changed(value[name], b) if name in value else _changed(None, b) for name, b in before.items())
    if isinstance(before, list):
        return sum(_changed(v, b) for v, b in zip(value, before))
    if before is None:
        return 0
    if not isinstance(value, torch.Tensor) or value.shape != before.shape:
        return before.numel()
    return int((value.detach().cpu() != before).sum())


def _returns(result, kind: type | tuple[type, ...], what: str, fn: Callable, case: str, length: int | None = None):
    """Return ``result`` if it is a ``kind`` (of ``length`` entries, when given); else fail: ``fn`` should return ``what``."""
    if not isinstance(result, kind) or (length is not None and len(result) != length):
        raise CheckFailed(f"{fn.__name__} should return {what}, got {type(result).__name__} — on the case {case}.")
    return result


def _truncation_hint(zeros: int, sparsity: float, n: int) -> str:
    """The hint for ``int(sparsity * n)`` zeros instead of ``round(sparsity * n)`` (``""`` when that is not the mistake)."""
    return f" — int() truncates {sparsity * n!r} to {int(sparsity * n)}; use round()" if zeros == int(sparsity * n) != round(sparsity * n) else ""


def _regrown(params, mask) -> int:
    """How many weights that ``mask`` prunes are non-zero in ``params`` (a module or ``{name: tensor}``)."""
    params = dict(params.named_parameters()) if isinstance(params, torch.nn.Module) else params
    return sum(int((params[name].detach().cpu()[~keep.bool().cpu()] != 0).sum()) for name, keep in mask.items())


def _max_difference(model, reference) -> float:
    """The largest difference between a parameter of ``model`` and the same parameter of ``reference``."""
    return max(float((p.detach().cpu() - q.detach().cpu()).abs().max()) for p, q in zip(model.parameters(), reference.parameters()))


def _expect_tensor(result, expected_shape, name: str, case: str) -> None:
    if not isinstance(result, torch.Tensor):
        raise CheckFailed(f"{name} should return a torch.Tensor, got {type(result).__name__} — on the case {case}.")
    if tuple(result.shape) != tuple(expected_shape):
        raise CheckFailed(f"{name} returned shape {tuple(result.shape)}, expected {tuple(expected_shape)} — on the case {case}.")


# --- Skipped exercises and predictions (every chapter) ---

def use_or_fallback(student: Callable, reference: Callable) -> Callable:
    """Return a callable that runs ``student``, or ``reference`` while ``student`` raises ``NotImplementedError``.

    Later cells of a chapter call the student's function through it, so a student who skipped the
    exercise (the student edition's stub) still runs the rest of the chapter, on lecturelib's
    reference implementation; the first fallback prints one line saying so. ``student`` may be a
    class (the call constructs it, and a stubbed ``__init__`` raises). A student's function that
    runs is used as it is, right or wrong: its check says whether it is right.

    Example:
        >>> def mine(x):
        ...     raise NotImplementedError
        >>> size = use_or_fallback(mine, abs)
        >>> size(-3)
        ⓘ mine is not implemented yet: this chapter uses the reference abs instead.
        3
        >>> size(-4)   # the note is printed once
        4
    """
    if not callable(student) or not callable(reference):
        bad = "student" if not callable(student) else "reference"
        raise TypeError(f"{bad} must be a function or class, got {(student if bad == 'student' else reference)!r}")
    noted = False

    @functools.wraps(student)
    def chosen(*args, **kwargs):
        nonlocal noted
        try:
            return student(*args, **kwargs)
        except NotImplementedError:
            if not noted:
                noted = True
                where = getattr(reference, "__module__", "") or ""
                name = getattr(reference, "__qualname__", repr(reference))
                full = (f"{where}.{name}" if where.startswith("lecturelib") else
                        f"torch.nn.{name}" if where.startswith("torch.nn") else name)
                print(f"ⓘ {getattr(student, '__name__', 'your function')} is not implemented yet: "
                      f"this chapter uses the reference {full} instead.")
            return reference(*args, **kwargs)

    return chosen


@_recorded
def check_prediction(prediction: float | None, measured: float, *, tolerance: float, what: str) -> None:
    """Check a predict-then-run answer: ``prediction`` (the student's number, ``None`` until written) within
    ``tolerance`` (absolute, same unit) of ``measured`` (what the cell just computed); ``what`` names the quantity.

    The notebook's pattern: a plain cell ``prediction = None  # your number``, a collapsed solution cell
    (tagged ``solution``) that sets it, then the cell that runs the experiment and calls this check;
    the student edition drops the solution cell, so the check reports *not attempted*.
    """
    from ._checks import as_scalar

    measured, tolerance, prediction = as_scalar(measured), as_scalar(tolerance), as_scalar(prediction)
    for name, value in (("measured", measured), ("tolerance", tolerance)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or (name == "tolerance" and value < 0):
            raise ValueError(f"{name} must be a {'non-negative ' if name == 'tolerance' else ''}number, got {value!r}")
    if prediction is None:
        raise NotAttempted(f"no prediction yet for {what}: replace None by your number, then run the cell.")
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float)) or prediction != prediction:
        raise CheckFailed(f"{what}: the prediction should be a number, got {prediction!r} of type {type(prediction).__name__}.")
    off = float(prediction) - float(measured)
    if abs(off) > tolerance:
        hint = (" — that is a percentage; give a fraction between 0 and 1" if 1 < abs(prediction) <= 100
                and abs(prediction / 100 - measured) <= tolerance else "")
        raise CheckFailed(f"{what}: you predicted {prediction:.4g}, the run gave {measured:.4g} — off by {off:+.3g}, "
                          f"more than the tolerance ±{tolerance:g}{hint}. Read the explanation, then see where your reasoning differs.")
    print(f"✓ {what}: you predicted {prediction:.4g}, the run gave {measured:.4g} (within ±{tolerance:g}).")


@_recorded
def check_prune_smallest(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(w, sparsity)``: a copy of the 1-D weights ``w`` with the ``round(sparsity * len(w))`` smallest ``|w|`` set to 0.

    ``w`` itself must not change. Cases include ``sparsity * len(w)`` that is not an integer (2.8 and
    0.29 * 100 = 28.999999999999996, which ``int()`` truncates; 4.2, which ``math.ceil`` rounds up) and
    tied ``|w|`` (a threshold test ``|w| <= t`` then prunes too many).
    """
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([0.5, -0.1, 2.0, -3.0, 0.05]), 0.4),
        (torch.randn(64, generator=generator), 0.5),
        (torch.randn(100, generator=generator), 0.0),
        (torch.randn(100, generator=generator), 0.9),
        (torch.randn(7, generator=generator), 0.4),
        (torch.randn(6, generator=generator), 0.7),
        (torch.randn(100, generator=generator), 0.29),
        (torch.tensor([1.0, -1.0, 0.5, 1.0, 3.0, -2.0]), 0.5),
    ]
    for w, sparsity in cases:
        case = f"w of length {len(w)}, sparsity={sparsity}"
        original = w
        result = _call(fn, case, w.clone(), sparsity, unchanged="{n} entries of the w you were given changed — you modified it in place. "
                       "Return a copy (start from w.clone()) and leave w as it was.")
        _expect_tensor(result, w.shape, fn.__name__, case)
        n_prune = round(sparsity * len(w))
        zeros = int((result == 0).sum())
        if zeros != n_prune:
            ties = int((original.abs() == original.abs().sort().values[max(n_prune - 1, 0)]).sum())
            hint = _truncation_hint(zeros, sparsity, len(w)) or (
                f" — with {ties} weights of equal |w|, a threshold test |w| <= t prunes all of them; prune exactly "
                f"{n_prune} entries by position (argsort or topk)" if zeros > n_prune and ties > 1 else "")
            raise CheckFailed(
                f"{case}: {zeros} weights are zero, expected round({sparsity} * {len(w)}) = {n_prune} "
                f"(sparsity {zeros / len(w):.0%} instead of {n_prune / len(w):.0%}){hint}."
            )
        kept = result != 0
        if not torch.equal(result[kept], original[kept]):
            i = int(torch.nonzero(kept & (result != original))[0])
            raise CheckFailed(f"{case}: position {i} holds {float(result[i]):.4g}, expected the weight itself, {float(original[i]):.4g} "
                              "— the weights you keep must keep their value; pruning only sets weights to 0.")
        if n_prune and original.abs()[~kept].max() > original.abs()[kept].min():
            got = sorted(torch.nonzero(~kept).flatten().tolist())
            want = sorted(original.abs().argsort()[:n_prune].tolist())
            hint = (" — prune by the size |w|, not by the signed value" if set(got) == set(original.argsort()[:n_prune].tolist()) else
                    " — you pruned the largest |w|; prune the smallest" if set(got) == set(original.abs().argsort(descending=True)[:n_prune].tolist())
                    else "")
            where = f" You pruned the positions {got}, expected {want}." if len(w) <= 10 else ""
            raise CheckFailed(
                f"{case}: a weight with |w| = {original.abs()[~kept].max():.3f} was pruned while one with "
                f"|w| = {original.abs()[kept].min():.3f} was kept{hint}.{where}"
            )
    return _passed(fn.__name__, len(cases))


@_recorded
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
        if torch.equal(result.long(), (keep[:, None] + torch.arange(hw)).flatten()):
            hint = " It looks like the channel index was not multiplied by height*width: channel c's block starts at c*H*W."
        elif len(result) > 1 and hw > 1 and int(result[1] - result[0]) != 1:
            hint = (" Consecutive features of one channel must be adjacent: Flatten writes (C, H, W) channel-first, "
                    "not pixel-first (H, W, C).")
        raise CheckFailed(
            f"{case}: position {i} holds feature {got} (channel {got // hw}, pixel {got % hw}), expected feature {want} "
            f"(channel {want // hw}, pixel {want % hw}); channel c's features are c*{hw} … c*{hw}+{hw - 1}.{hint}"
        )
    return _passed(fn.__name__, len(cases))


@_recorded
def check_remove_output_units(fn: Callable[[torch.Tensor, torch.Tensor, int], tuple]) -> None:
    """Check ``fn(weight, bias, n_keep)``: keep the ``n_keep`` rows (output units) of ``weight`` with the
    largest L2 norm, in their original order, and the matching entries of ``bias``; return
    ``(smaller_weight, smaller_bias)`` — a smaller dense layer, not a layer with zero rows."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([[3.0, 0.0], [0.1, 0.1], [0.0, -2.0], [1.0, 1.0]]), torch.tensor([1.0, 2.0, 3.0, 4.0]), 2),
        (torch.randn(16, 8, generator=generator), torch.randn(16, generator=generator), 4),
        (torch.randn(10, 5, generator=generator), torch.randn(10, generator=generator), 10),
        # L2 keeps rows 1 and 3, L1 (sum of |w|) rows 0 and 1, the signed sum rows 0 and 1
        (torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.5, 0.0, 0.0, 0.0], [0.2, 0.1, -0.1, 0.3], [-2.2, 0.0, 0.0, 0.2]]),
         torch.tensor([0.1, 0.2, 0.3, 0.4]), 2),
    ]
    for weight, bias, n_keep in cases:
        case = f"weight {tuple(weight.shape)}, n_keep={n_keep}"
        new_w, new_b = _returns(_call(fn, case, weight.clone(), bias.clone(), n_keep), tuple, "a tuple (weight, bias)", fn, case, length=2)
        if isinstance(new_w, torch.Tensor) and n_keep < len(weight) and new_w.shape == weight.shape:
            raise CheckFailed(
                f"{case}: the weight still has shape {tuple(weight.shape)}. Zeroing rows does not remove them: "
                f"return a smaller matrix with only the {n_keep} kept rows (shape ({n_keep}, {weight.shape[1]}))."
            )
        _expect_tensor(new_w, (n_keep, weight.shape[1]), f"{fn.__name__}(...)[0]", case)
        _expect_tensor(new_b, (n_keep,), f"{fn.__name__}(...)[1]", case)
        kept = torch.topk(weight.norm(dim=1), n_keep).indices
        expected = kept.sort().values
        if torch.equal(new_w, weight[kept]) and not torch.equal(kept, expected):
            raise CheckFailed(f"{case}: you kept the right rows but sorted them by norm; keep them in their original order "
                              "(the next layer's columns must stay aligned with them).")
        if not torch.equal(new_w, weight[expected]):
            got = [int(hit[0]) if len(hit) else -1 for hit in ((weight == row).all(dim=1).nonzero().flatten() for row in new_w)]
            l1 = sorted(torch.topk(weight.abs().sum(dim=1), n_keep).indices.tolist())
            hint = (" — you ranked the rows by the L1 norm (sum of |w|); rank them by the L2 norm, sqrt(sum of w²)"
                    if got == l1 and l1 != expected.tolist() else
                    " — some returned rows are not rows of weight: slice the rows, do not change them" if -1 in got else
                    " — score each row by its L2 norm over all its inputs, weight.norm(dim=1)")
            norms = ", ".join(f"{v:.2f}" for v in weight.norm(dim=1)[:6].tolist())
            more = "…" if len(weight) > 6 else ""
            raise CheckFailed(f"{case}: you kept the rows {got}, expected {expected.tolist()}, the {n_keep} rows with the "
                              f"largest L2 norm (norms {norms}{more}){hint}.")
        if not torch.equal(new_b, bias[expected]):
            raise CheckFailed(f"{case}: the bias entries do not belong to the kept rows; slice bias with the same indices.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_survivor_histogram(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(weights, edges)``: the number of **non-zero** weights in each bin ``[edges[i], edges[i+1])``
    (the last bin closed), ignoring pruned (exactly zero) weights and weights outside the edges."""
    generator = torch.Generator().manual_seed(1)
    dense = torch.randn(500, generator=generator)
    pruned = dense.clone()
    pruned[pruned.abs() < 0.5] = 0
    cases = [
        # -0.5 and 0.5 lie on inner edges (they belong to the bin on their right), 1.0 on the last, closed edge
        (torch.tensor([-0.9, -0.5, -0.2, 0.0, 0.0, 0.1, 0.3, 0.3, 0.5, 1.0]), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])),
        (pruned, torch.linspace(-3, 3, 13)),
        (dense.reshape(20, 25), torch.linspace(-2, 2, 9)),
    ]
    for weights, edges in cases:
        case = f"weights {tuple(weights.shape)} with {int((weights == 0).sum())} zeros, {len(edges) - 1} bins"
        result = _call(fn, case, weights.clone(), edges.clone())
        _expect_tensor(result, (len(edges) - 1,), fn.__name__, case)
        alive = weights.reshape(-1)[weights.reshape(-1) != 0]
        alive = alive[(alive >= edges[0]) & (alive <= edges[-1])]
        expected = torch.bincount((torch.bucketize(alive, edges, right=True) - 1).clamp(max=len(edges) - 2), minlength=len(edges) - 1)
        got = result.round().long()
        if torch.equal(got, expected):
            continue
        zeros = int((weights == 0).sum())
        zero_bin = int((torch.bucketize(torch.tensor([0.0]), edges, right=True) - 1).clamp(0, len(edges) - 2))
        diff = got - expected
        if zeros and int(diff[zero_bin]) == zeros and int(diff.abs().sum()) == zeros:
            raise CheckFailed(f"{case}: the bin around 0 holds {zeros} extra weights — you counted the pruned (zero) "
                              "weights; count only the survivors (w != 0).")
        on_last_edge = int((alive == edges[-1]).sum())
        if int(got.sum()) != int(expected.sum()):
            hint = (" — the last bin is closed: a weight equal to edges[-1] counts" if on_last_edge and
                    int(diff[-1]) == -on_last_edge and int(diff[:-1].abs().sum()) == 0 else "")
            raise CheckFailed(f"{case}: your bins hold {int(got.sum())} weights in all, expected {int(expected.sum())} "
                              f"(the non-zero weights between edges[0] and edges[-1]){hint}.")
        right_closed = torch.bincount((torch.bucketize(alive, edges) - 1).clamp(min=0), minlength=len(edges) - 1)
        hint = (" — a weight exactly on an inner edge belongs to the bin on its right, [edges[i], edges[i+1]) "
                "(torch.bucketize(..., right=True))" if torch.equal(got, right_closed) else
                " — use the given edges, left-closed bins (the last one closed)")
        i = int(diff.abs().argmax())
        raise CheckFailed(f"{case}: bin {i} [{edges[i]:.2f}, {edges[i + 1]:.2f}) holds {int(got[i])} weights, expected "
                          f"{int(expected[i])} (all bins: got {got.tolist()}, expected {expected.tolist()}){hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_inverted_dropout(fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]) -> None:
    """Check ``fn(x, p, generator)``: training-time (inverted) dropout — each entry is set to 0 with
    probability ``p`` (draw with ``generator``) and the survivors are multiplied by ``1 / (1 - p)``."""
    cases = [(0.5, 200_000), (0.2, 200_000), (0.8, 200_000), (0.0, 1000)]
    for p, n in cases:
        case = f"x = ones({n}), p={p}"
        x = torch.ones(n)
        result = _call(fn, case, x.clone(), p, torch.Generator().manual_seed(0))
        _expect_tensor(result, x.shape, fn.__name__, case)
        _expect_inverted_dropout(result, p, case)
    x = torch.arange(1.0, 7.0)
    a = _call(fn, "two calls with the same generator seed", x.clone(), 0.5, torch.Generator().manual_seed(3))
    b = _call(fn, "two calls with the same generator seed", x.clone(), 0.5, torch.Generator().manual_seed(3))
    if not torch.equal(a, b):
        raise CheckFailed("two calls with generators of the same seed gave different masks: draw the random numbers "
                          "with the generator you are given (e.g. torch.rand(x.shape, generator=generator)).")
    kept = a != 0
    if not torch.allclose(a[kept], 2 * x[kept]):
        raise CheckFailed("on x = [1, …, 6] with p = 0.5 the survivors should be 2·x; each entry keeps its own value, scaled.")
    _passed(fn.__name__, len(cases) + 1)


def _expect_inverted_dropout(out: torch.Tensor, p: float, case: str) -> None:
    """Fail unless about a fraction ``p`` of ``out`` (dropout applied to ones) is 0 and every other entry is ``1 / (1 - p)``."""
    dropped = float((out == 0).float().mean())
    if abs(dropped - p) > 0.01:
        hint = " — did you drop with probability 1 - p? p is the probability to DROP an entry, not to keep it" if abs(dropped - (1 - p)) < 0.01 else ""
        raise CheckFailed(f"{case}: {dropped:.1%} of the entries are 0, expected about {p:.0%}{hint}.")
    alive = out[out != 0]
    if len(alive) and not torch.allclose(alive, torch.full_like(alive, 1 / (1 - p)), rtol=1e-5):
        value = float(alive.mean())
        hint = (" — you multiplied by (1 - p) instead of dividing by it" if abs(value - (1 - p)) < 1e-4 else
                " — you forgot to scale the survivors by 1 / (1 - p)" if abs(value - 1) < 1e-6 else "")
        raise CheckFailed(f"{case}: survivors have value {value:.4f}, expected 1/(1-p) = {1 / (1 - p):.4f}{hint}; "
                          "the scaling keeps the expected output equal to the input.")


@_recorded
def check_ticket_weights(fn: Callable[[dict, dict], dict]) -> None:
    """Check ``fn(init_state, mask)``: the weights a lottery ticket restarts from, ``m ⊙ W_0``.

    ``init_state`` is a ``state_dict`` (``{name: tensor}``) of the initialisation, ``mask`` a
    ``{name: bool tensor}`` over some of its entries. The result must be a new dict with every name of
    ``init_state``: masked entries multiplied by their mask, the others (biases…) copied unchanged;
    the inputs must not be modified.
    """
    generator = torch.Generator().manual_seed(0)
    cases = [
        ({"fc.weight": torch.tensor([[1.0, -2.0], [3.0, -4.0]]), "fc.bias": torch.tensor([0.5, -0.5])},
         {"fc.weight": torch.tensor([[True, False], [False, True]])}),
        ({"fc1.weight": torch.randn(6, 4, generator=generator), "fc1.bias": torch.randn(6, generator=generator),
          "fc2.weight": torch.randn(3, 6, generator=generator)},
         {"fc1.weight": torch.rand(6, 4, generator=generator) > 0.7, "fc2.weight": torch.rand(3, 6, generator=generator) > 0.2}),
    ]
    for init, mask in cases:
        case = f"init_state with {sorted(init)}, mask over {sorted(mask)}"
        result = _returns(_call(fn, case, init, mask, unchanged="you changed init_state or mask in place; IMP needs W_0 again at every round, "
                                "so return new tensors (e.g. w * m) instead of modifying the inputs."), dict, "a dict {name: tensor}", fn, case)
        missing = sorted(set(init) - set(result))
        if missing:
            raise CheckFailed(f"{case}: the result lacks {missing}; entries the mask does not cover (biases…) must be kept, "
                              "unchanged, or load_state_dict will fail.")
        for name, w0 in init.items():
            _expect_tensor(result[name], w0.shape, f"{fn.__name__}(...)[{name!r}]", case)
            if name not in mask:
                if not torch.equal(result[name], w0):
                    raise CheckFailed(f"{case}: {name!r} is not in the mask, so it must be copied from init_state unchanged.")
                continue
            keep = mask[name].bool()
            revived = int((result[name][~keep] != 0).sum())
            if revived:
                raise CheckFailed(f"{case}: {revived} pruned entries of {name!r} are non-zero; multiply by the mask so that "
                                  "pruned weights are exactly 0.")
            if not torch.equal(result[name][keep], w0[keep]):
                raise CheckFailed(f"{case}: the kept entries of {name!r} differ from their initial values W_0; a winning ticket "
                                  "restarts its surviving weights from exactly their initialisation (no rescaling, no new draw).")
    _passed(fn.__name__, len(cases))


@_recorded
def check_interpolate(fn: Callable[[dict, dict, float], dict]) -> None:
    """Check ``fn(state_a, state_b, alpha)``: the state ``(1 - alpha) * state_a + alpha * state_b``.

    Floating-point tensors are interpolated; integer tensors (such as a batch counter) are copied
    from ``state_a``; the inputs must not be modified.
    """
    generator = torch.Generator().manual_seed(1)
    a = {"fc.weight": torch.randn(4, 3, generator=generator), "fc.bias": torch.randn(4, generator=generator),
         "bn.num_batches_tracked": torch.tensor(5)}
    b = {"fc.weight": torch.randn(4, 3, generator=generator), "fc.bias": torch.randn(4, generator=generator),
         "bn.num_batches_tracked": torch.tensor(9)}
    alphas = [0.0, 1.0, 0.25, 0.5]
    for alpha in alphas:
        case = f"alpha={alpha}"
        result = _returns(_call(fn, case, a, b, alpha, unchanged="you changed state_a or state_b in place; build new tensors instead."),
                          dict, "a dict {name: tensor}", fn, case)
        if set(result) != set(a):
            raise CheckFailed(f"{case}: the result holds {sorted(result)}, expected the same names as the states {sorted(a)}.")
        for name in ("fc.weight", "fc.bias"):
            _expect_tensor(result[name], a[name].shape, f"{fn.__name__}(...)[{name!r}]", case)
            expected = (1 - alpha) * a[name] + alpha * b[name]
            if not torch.allclose(result[name], expected, atol=1e-6):
                swapped = (1 - alpha) * b[name] + alpha * a[name]
                hint = (" — you swapped the roles: alpha = 0 must give state_a and alpha = 1 state_b"
                        if alpha != 0.5 and torch.allclose(result[name], swapped, atol=1e-6) else
                        " — the weights of the two ends must add up to 1: (1 - alpha) and alpha")
                raise CheckFailed(f"{case}: {name!r} is off by up to {float((result[name] - expected).abs().max()):.4f}{hint}.")
        counter = result["bn.num_batches_tracked"]
        if counter.is_floating_point() or int(counter) != 5:
            raise CheckFailed(f"{case}: the integer tensor 'bn.num_batches_tracked' became {counter!r}; integer tensors "
                              "are counters, not weights: copy them from state_a.")
    _passed(fn.__name__, len(alphas))


# --- The pruning loop, sparsity curves and iterative schedules (lecturelib.iterative) ---

@_recorded
def check_update_mask(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(weight, mask, sparsity)``: the new mask ``M ← M ⊙ keep`` that prunes the smallest ``|w|`` among the weights still alive until ``round(sparsity * n)`` are pruned, without reviving any."""
    generator = torch.Generator().manual_seed(0)
    revived = torch.randn(6, 5, generator=generator)
    old = torch.ones(6, 5, dtype=torch.bool)
    old[0, :3] = False
    revived[0, :3] = torch.tensor([5.0, -4.0, 3.0])  # pruned earlier, then (wrongly) grown large
    cases = [
        ("a fresh all-ones mask on 5 weights, sparsity 0.4", torch.tensor([0.5, -0.1, 2.0, -3.0, 0.05]), torch.ones(5, dtype=torch.bool), 0.4),
        ("a 6x5 weight whose 3 pruned entries hold large values, sparsity 0.5", revived, old, 0.5),
        ("a 6x5 weight already at the requested sparsity 0.1", revived, old, 0.1),
        ("a fresh 8x8 mask, sparsity 0.9", torch.randn(8, 8, generator=generator), torch.ones(8, 8, dtype=torch.bool), 0.9),
    ]
    for case, weight, mask, target in cases:
        result = _call(fn, case, weight, mask, target, unchanged="you changed the weight or the old mask in place; return a new mask instead.")
        _expect_tensor(result, weight.shape, fn.__name__, case)
        keep = result.bool()
        back = int((keep & ~mask).sum())
        if back:
            raise CheckFailed(f"{case}: {back} weight(s) that the old mask had pruned are kept again — pruned weights must "
                              "stay pruned (M ← M ⊙ keep), even when their value is large.")
        n_prune = round(target * weight.numel())
        zeros = int((~keep).sum())
        if zeros != n_prune:
            hint = _truncation_hint(zeros, target, weight.numel()) or " — the sparsity counts the weights pruned before, too"
            raise CheckFailed(f"{case}: the new mask prunes {zeros} of {weight.numel()} weights, expected "
                              f"round({target} * {weight.numel()}) = {n_prune}{hint}.")
        newly = mask & ~keep
        if newly.any() and (keep & mask).any() and weight.abs()[newly].max() > weight.abs()[keep].min():
            raise CheckFailed(f"{case}: a weight with |w| = {weight.abs()[newly].max():.3f} was pruned while one with "
                              f"|w| = {weight.abs()[keep].min():.3f} was kept — prune the smallest |w| among the weights still alive.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_largest_safe_ratio(fn: Callable[[list, list, float, float], float]) -> None:
    """Check ``fn(sparsities, accuracies, reference, tolerance)``: the largest sparsity up to which every accuracy is ``>= reference - tolerance``."""
    cases = [
        ("a curve that falls steadily", [0.5, 0.8, 0.9, 0.95], [97.0, 96.5, 90.0, 85.0], 97.0, 1.0, 0.8),
        ("a curve that dips at 80 % and recovers at 90 %", [0.5, 0.8, 0.9, 0.95], [97.0, 90.0, 97.0, 97.0], 97.0, 1.0, 0.5),
        ("a curve that ends exactly at reference - tolerance", [0.5, 0.8, 0.9], [97.0, 96.5, 96.0], 97.0, 1.0, 0.9),
        ("a curve already below at the first sparsity", [0.5, 0.8], [80.0, 70.0], 97.0, 1.0, 0.0),
        ("a curve that never falls", [0.3, 0.6], [0.98, 0.97], 0.975, 0.01, 0.6),
    ]
    for case, sparsities, accs, reference, tolerance, expected in cases:
        result = _call(fn, case, list(sparsities), list(accs), reference, tolerance)
        if isinstance(result, bool) or not isinstance(result, (int, float)):
            raise CheckFailed(f"{fn.__name__} should return a sparsity (a float), got {type(result).__name__} — on the case {case}.")
        if result in range(len(sparsities)) and result != expected and sparsities[int(result)] == expected:
            raise CheckFailed(f"{case}: you returned the index {result}; return the sparsity itself, sparsities[{result}] = {expected}.")
        if abs(result - expected) > 1e-12:
            hint = {
                1: " — after the first sparsity whose accuracy falls below reference - tolerance, stop: a later recovery does not count",
                2: " — a value exactly at reference - tolerance is still within the tolerance (use >=)",
                3: " — if the accuracy at the first sparsity is already below, return 0.0",
            }.get(cases.index((case, sparsities, accs, reference, tolerance, expected)), "")
            raise CheckFailed(f"{case}: got {result!r}, expected {expected!r}{hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_sparsity_schedule(fn: Callable[[float, int], list]) -> None:
    """Check ``fn(final_sparsity, rounds)``: ``rounds`` sparsities, each round pruning the same fraction of the *remaining* weights, ending exactly at ``final_sparsity``.

    "Exactly" is ``==``: for (0.5, 2) and (0.5, 3), ``1 - (1 - rate) ** rounds`` gives 0.4999999999999999.
    """
    cases = [(0.875, 3), (0.98, 5), (0.5, 1), (0.9, 4), (0.5, 2), (0.5, 3)]
    for final, rounds in cases:
        case = f"final_sparsity={final}, rounds={rounds}"
        result = _call(fn, case, final, rounds)
        try:
            values = [float(v) for v in result]
        except TypeError:
            raise CheckFailed(f"{fn.__name__} should return a list of floats, got {type(result).__name__} — on the case {case}.") from None
        if len(values) != rounds:
            hint = " — do not include the dense starting point 0.0; one entry per round" if len(values) == rounds + 1 else ""
            raise CheckFailed(f"{case}: got {len(values)} sparsities, expected one per round ({rounds}){hint}.")
        if values[-1] != final:
            off = values[-1] - final
            hint = (" — rounding errors of (1 - rate) ** r; set the last entry to final_sparsity itself" if abs(off) < 1e-9 else "")
            raise CheckFailed(f"{case}: the schedule ends at {values[-1]!r}, not at the requested {final!r} (off by {off:+.1e}){hint}.")
        if any(b <= a for a, b in zip(values[:-1], values[1:])) or values[0] <= 0:
            raise CheckFailed(f"{case}: the sparsities {[round(v, 4) for v in values]} must increase, starting above 0.")
        kept = [1.0] + [1 - v for v in values]
        rates = [1 - b / a for a, b in zip(kept[:-1], kept[1:])]
        if max(rates) - min(rates) > 1e-6:
            linear = all(abs(v - final * (r + 1) / rounds) < 1e-9 for r, v in enumerate(values))
            hint = (" — your steps are equal fractions of ALL weights (a linear schedule); each round must prune the same "
                    "fraction of the weights still remaining: 1 - (1 - s)^(r / rounds)" if linear else "")
            raise CheckFailed(f"{case}: the rounds prune {', '.join(f'{100 * p:.1f} %' for p in rates)} of the remaining "
                              f"weights, expected the same rate every round{hint}.")
    _passed(fn.__name__, len(cases))


# --- Chapters 1-5: the algorithm exercises (references in data_importance, distributions, dropout, finegrained) ---

def _pruned_positions(result: torch.Tensor) -> list[int]:
    return sorted(torch.nonzero(result.reshape(-1) == 0).flatten().tolist())


@_recorded
def check_prune_by_contribution(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(w, x, sparsity)``: a copy of ``w`` ``(n,)`` with the ``round(sparsity * n)`` weights of smallest mean
    contribution ``|w_i| · mean_b |x_bi|`` (over the batch ``x`` ``(B, n)``) set to 0; ``w`` and ``x`` unchanged.

    The cases have inputs on very different scales (a column that is never lit, one that averages to 0
    but is large), so that ranking by ``|w|`` alone, or by ``|w_i · mean x_i|``, prunes other weights.
    """
    from .data_importance import mean_contributions, prune_by_contribution
    from .pruning import keep_largest

    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 8.0, 0.01, 1.0, 0.0, 1.5])
    signs = torch.tensor([1.0, -1.0] * 5)[:, None]
    spiky = torch.rand(200, 50, generator=generator) * torch.linspace(0, 2, 50)
    spiky[:, ::7] = 0                                                   # never-lit inputs
    cases = [
        ("w of length 6 with inputs on scales 1, 8, 0.01, 1, 0, 1.5; sparsity=0.5",
         torch.tensor([0.5, -0.1, 2.0, -3.0, 0.05, 1.0]), torch.ones(10, 6) * scales * torch.cat([torch.ones(10, 3), signs, torch.ones(10, 2)], 1), 0.5),
        ("w of length 50, raw-pixel-like x (200, 50) with never-lit inputs; sparsity=0.3", torch.randn(50, generator=generator), spiky, 0.3),
        ("w of length 7, sparsity=0.4 (0.4 * 7 = 2.8)", torch.randn(7, generator=generator), torch.rand(20, 7, generator=generator) * 3, 0.4),
        ("w of length 50, sparsity=0.0", torch.randn(50, generator=generator), spiky, 0.0),
        # input 0 is 0, 0, 0, 4 (mean |x| 1, root mean square 2), input 1 always 1.5: the mean, not the RMS, ranks them
        ("w = [1, 1, 0.2], x (4, 3) whose input 0 is lit once, brightly; sparsity=0.67",
         torch.tensor([1.0, 1.0, 0.2]), torch.tensor([[0.0, 1.5, 1.0]] * 3 + [[4.0, 1.5, 1.0]]), 0.67),
    ]
    for case, w, x, sparsity in cases:
        result = _call(fn, case, w.clone(), x.clone(), sparsity,
                       unchanged="the w or x you were given changed — you modified it in place. Return a copy (start from w.clone()).")
        _expect_tensor(result, w.shape, fn.__name__, case)
        expected = prune_by_contribution(w, x, sparsity)
        if torch.equal(result, expected):
            continue
        n_prune = round(sparsity * len(w))
        zeros = int((result == 0).sum())
        if zeros != n_prune:
            raise CheckFailed(f"{case}: {zeros} weights are zero, expected round({sparsity} * {len(w)}) = {n_prune}"
                              f"{_truncation_hint(zeros, sparsity, len(w))}.")
        kept = result != 0
        if not torch.equal(result[kept], w[kept]):
            raise CheckFailed(f"{case}: some kept weights changed value; pruning only sets weights to 0.")
        got, want = _pruned_positions(result), _pruned_positions(expected)
        by = {name: _pruned_positions(w.masked_fill(~keep_largest(score, len(w) - n_prune), 0)) for name, score in (
            ("size", w.abs()), ("signed", (w * x.mean(0)).abs()), ("rms", w.abs() * x.pow(2).mean(0).sqrt()))}
        hint = (" — these are the smallest |w|: the score must include the input, |w_i| times mean |x_i|" if got == by["size"] else
                " — you averaged the signed inputs (|w_i · mean x_i|); an input that is large but averages to 0 still matters: "
                "average |x_i|" if got == by["signed"] else
                " — you used the root mean square of x_i; the mean contribution averages |x_i| itself" if got == by["rms"] else
                " — prune the smallest scores, not the largest" if set(got).isdisjoint(want) and n_prune <= len(w) // 2 else "")
        where = f"you pruned the positions {got}, expected {want}" if len(w) <= 10 else f"you pruned {len(set(got) - set(want))} positions that should stay"
        scores = mean_contributions(w, x)
        raise CheckFailed(f"{case}: {where} (the smallest mean contributions |w_i|·mean|x_i|; "
                          f"largest pruned score {scores[~kept].max():.3g} > smallest kept {scores[kept].min():.3g}){hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_hidden_apoz(fn: Callable) -> None:
    """Check ``fn(model, x)``: the average percentage of zeros of each unit of ``model``'s first hidden layer,
    ``relu(fc1(flatten(x)))``, as a fraction in [0, 1] over the inputs ``x``; shape ``(units,)``; the model unchanged."""
    from . import models
    from .data_importance import hidden_apoz

    generator = torch.Generator().manual_seed(0)
    tiny = models.mlp((3,), 2, hidden=(4,), seed=0)
    with torch.no_grad():
        tiny.fc1.weight.copy_(torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 0], [0, 1.0, 1.0]]))
        tiny.fc1.bias.copy_(torch.tensor([0.0, 0.0, 0.5, -3.0]))
    cases = [
        ("a 3 -> 4 -> 2 MLP whose units are always / never / half the time 0, x (100, 3)", tiny, torch.randn(100, 3, generator=generator)),
        ("an 8x8 -> 16 -> 8 -> 10 MLP at its initialisation, x (64, 1, 8, 8)", models.mlp((1, 8, 8), 10, hidden=(16, 8), seed=1),
         torch.randn(64, 1, 8, 8, generator=generator)),
        ("a 5 -> 6 -> 3 MLP, x (7, 5)", models.mlp((5,), 3, hidden=(6,), seed=2), torch.randn(7, 5, generator=generator) + 0.5),
    ]
    for case, model, x in cases:
        result = _call(fn, case, model, x.clone(), unchanged="the model's weights (or x) changed; measuring APoZ only runs the model "
                       "(under torch.no_grad()).")
        units = model.fc1.out_features
        if isinstance(result, torch.Tensor) and result.shape == (len(x),) and len(x) != units:
            raise CheckFailed(f"{case}: you returned one number per input ({len(x)}); APoZ is one number per hidden unit "
                              f"({units}): average over the inputs, dim 0.")
        _expect_tensor(result, (units,), fn.__name__, case)
        expected = hidden_apoz(model, x)
        got = result.detach().float()
        if torch.allclose(got, expected, atol=1e-6):
            continue
        i = int((got - expected).abs().argmax())
        hint = (" — that is a percentage; return a fraction in [0, 1]" if torch.allclose(got, 100 * expected, atol=1e-4) else
                " — that is 1 − APoZ, the fraction of inputs where the unit is active; count the zeros" if torch.allclose(got, 1 - expected, atol=1e-6) else
                " — count zeros after the ReLU: before it, a pre-activation is almost never exactly 0" if float(got.abs().max()) == 0 else "")
        raise CheckFailed(f"{case}: unit {i} has APoZ {float(got[i]):.4g}, expected {float(expected[i]):.4g} "
                          f"(the fraction of the {len(x)} inputs on which relu(fc1(x)) is 0){hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_hole_change(fn: Callable[[torch.Tensor, torch.Tensor], dict]) -> None:
    """Check ``fn(pruned, retrained)``: ``{"threshold", "refilled", "p99_growth"}`` of one layer, as
    :func:`lecturelib.distributions.hole_change` — ``t`` the smallest surviving ``|w|`` right after pruning,
    the fraction of the survivors (non-zero in ``pruned``) whose retrained ``|w|`` is strictly below ``t``,
    and the growth of the survivors' 99th percentile of ``|w|``."""
    from .distributions import hole_change

    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(30, 20, generator=generator)
    pruned = dense * (dense.abs() >= dense.abs().quantile(0.8))
    drift = pruned * (1 + 0.6 * torch.randn(30, 20, generator=generator))
    cases = [
        ("pruned [0, 0, 0.5, -0.8, 0, 1, -2, 0.6] retrained to [0, 0, 0.4, -0.9, 0, 1.5, -2.5, 0.5] (one survivor exactly at t)",
         torch.tensor([0.0, 0.0, 0.5, -0.8, 0.0, 1.0, -2.0, 0.6]), torch.tensor([0.0, 0.0, 0.4, -0.9, 0.0, 1.5, -2.5, 0.5])),
        ("a 30x20 layer, 80 % pruned, survivors drifting by ±60 %", pruned, drift),
        ("a 30x20 layer, 80 % pruned, retrained = pruned (nothing changed)", pruned, pruned.clone()),
    ]
    for case, before, after in cases:
        result = _call(fn, case, before.clone(), after.clone(), unchanged="you changed the tensors you were given in place; measure on copies.")
        if not isinstance(result, dict) or set(result) != {"threshold", "refilled", "p99_growth"}:
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise CheckFailed(f"{fn.__name__} should return a dict with the keys ['p99_growth', 'refilled', 'threshold'], got {got} — on the case {case}.")
        expected = hole_change(before, after)
        survivors = before != 0
        wrong = {   # what common mistakes give, to say which one it is
            ("threshold", 0.0): "the zeros are pruned weights, not survivors: t is the smallest non-zero |w| of pruned",
            ("threshold", float(after[after != 0].abs().min())): "take t from pruned (the hole pruning made), not from retrained",
            ("refilled", float(((after.abs() < expected["threshold"])).float().mean())):
                "you counted the pruned weights (exactly 0) as inside the hole; count only the survivors",
            ("refilled", float(((after.abs() < expected["threshold"]) & survivors).sum() / after.numel())):
                "divide by the number of survivors, not by all the weights of the layer",
            ("refilled", float((after[survivors].abs() <= expected["threshold"]).float().mean())):
                "a survivor exactly at t is on the edge, not inside: count |w| < t strictly",
            ("p99_growth", float(torch.quantile(after.abs().reshape(-1), 0.99) / torch.quantile(before.abs().reshape(-1), 0.99))):
                "take the percentile over the survivors only; the zeros of the pruned weights pull it down",
        }
        for key in ("threshold", "refilled", "p99_growth"):
            value = result[key]
            value = float(value) if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool) else value
            if not isinstance(value, float):
                raise CheckFailed(f"{case}: {key!r} should be a number, got {type(result[key]).__name__}.")
            if abs(value - expected[key]) <= 1e-5 * max(1.0, abs(expected[key])):
                continue
            hint = next((f" — {why}" for (k, v), why in wrong.items() if k == key and abs(value - v) <= 1e-6 * max(1.0, abs(v))), "")
            raise CheckFailed(f"{case}: {key!r} is {value:.4g}, expected {expected[key]:.4g}{hint}.")
    _passed(fn.__name__, len(cases))


# --- The algorithms of chapters 6–10: ratio curve, channel surgery, iterative loop, IMP, error barrier ---
# Each check runs the student's function and lecturelib.reference on small cases (tiny networks and data,
# a few training steps: about a second) and says which case and what differs.

def _tiny_data(seed: int, features: int = 16, classes: int = 4, n_train: int = 256, n_test: int = 200):
    """A small, noisy classification problem (Gaussian clusters), generated from ``seed``: the checks' data."""
    from .data import Dataset

    generator = torch.Generator().manual_seed(seed)
    centers = 1.2 * torch.randn(classes, features, generator=generator)
    y = torch.randint(classes, (n_train + n_test,), generator=generator)
    x = centers[y] + torch.randn(n_train + n_test, features, generator=generator)
    return Dataset(f"tiny-{seed}", x[:n_train], y[:n_train], x[:0], y[:0], x[n_train:], y[n_train:], classes)


def _tiny_mlp(seed: int, hidden=(16, 8)):
    from .models import mlp

    return mlp((16,), 4, hidden=hidden, seed=seed)


def _trained_tiny(seed: int, steps: int, hidden=(16, 8), data=None):
    """``(model, data)``: :func:`_tiny_mlp` ``(seed, hidden)`` trained ``steps`` steps on ``data`` (default :func:`_tiny_data` ``(seed)``)."""
    from .training import train

    data, model = _tiny_data(seed) if data is None else data, _tiny_mlp(seed, hidden)
    train(model, data, iterations=steps, lr=1e-2, data_seed=seed, device="cpu")
    return model, data


def _expect_masks(result, rounds: int, names: list[str], name: str, case: str) -> list[dict[str, torch.Tensor]]:
    """The student's list of one mask per round, validated: a list of ``{name: bool tensor}`` over ``names``."""
    if not isinstance(result, (list, tuple)) or not all(isinstance(m, dict) for m in result):
        raise CheckFailed(f"{name} should return a list of masks {{name: bool tensor}}, one per round, got {type(result).__name__} — on the case {case}.")
    if len(result) != rounds:
        hint = " — do not include the dense starting mask (all ones); one mask per round" if len(result) == rounds + 1 else ""
        raise CheckFailed(f"{case}: got {len(result)} masks, expected one per round ({rounds}){hint}.")
    for r, mask in enumerate(result, start=1):
        if sorted(mask) != sorted(names):
            raise CheckFailed(f"{case}: the mask of round {r} covers {sorted(mask)}, expected the weights {names} "
                              "(the masks lecturelib.pruning makes: every Linear/Conv weight, no biases).")
        if r > 1 and any(bool((mask[k].bool() & ~result[r - 2][k].bool()).any()) for k in mask):
            raise CheckFailed(f"{case}: the mask of round {r} keeps weights that round {r - 1} had pruned — pruned weights stay "
                              "pruned: pass current_mask= the previous mask.")
    return [{k: v.bool().cpu() for k, v in mask.items()} for mask in result]


def _on_one_thread(check: Callable) -> Callable:
    """Run a check of tiny networks on one PyTorch thread (restored after): on a busy machine two threads make tiny steps many times slower."""
    @functools.wraps(check)
    def on_one_thread(*args, **kwargs):
        from .machine import torch_threads

        with torch_threads(1):
            return check(*args, **kwargs)

    return on_one_thread


@_recorded
@_on_one_thread
def check_pruned_accuracies(fn: Callable) -> None:
    """Check ``fn(model, data, ratios)``: the test accuracy (a fraction) of the trained ``model`` pruned by
    global magnitude (one threshold over all layers) to each ratio, without retraining; ``model`` unchanged.

    Compared with :func:`lecturelib.reference.pruned_accuracies` on three small trained networks.
    """
    import dataclasses

    from . import reference
    from .pruning import apply_mask, layerwise_magnitude_mask
    from .training import clone_model, evaluate

    cases = [(0, (16, 8), [0.5, 0.8, 0.95]), (1, (16, 8), [0.3, 0.7, 0.9, 0.97]), (2, (32,), [0.0, 0.6, 0.85])]
    for seed, hidden, ratios in cases:
        model, data = _trained_tiny(seed, 60, hidden)
        case = f"a trained MLP with hidden layers {hidden} (seed {seed}), ratios {ratios}"
        expected = reference.pruned_accuracies(model, data, ratios)
        result = _call(fn, case, model, data, list(ratios), unchanged="{n} weights of the model you were given changed — you pruned it in "
                       "place. Prune a copy at each ratio (training.clone_model(model)) and leave the trained model as it was.")
        try:
            got = [float(v) for v in result]
        except (TypeError, ValueError):
            raise CheckFailed(f"{fn.__name__} should return a list of accuracies (floats), got {type(result).__name__} — on the case {case}.") from None
        if len(got) != len(ratios):
            hint = " — do not include the unpruned accuracy; one entry per ratio" if len(got) == len(ratios) + 1 else ""
            raise CheckFailed(f"{case}: got {len(got)} accuracies, expected one per ratio ({len(ratios)}){hint}.")
        for ratio, g, e in zip(ratios, got, expected):
            if abs(g - e) <= 1e-6:
                continue
            layerwise = evaluate(apply_mask(clone_model(model), layerwise_magnitude_mask(model, ratio)), data.x_test, data.y_test)[1]
            on_train = reference.pruned_accuracies(model, dataclasses.replace(data, x_test=data.x_train, y_test=data.y_train), [ratio])[0]
            hint = (" — that is the error 1 - accuracy; return the accuracy" if abs(g - (1 - e)) <= 1e-6 else
                    " — that is a percentage; return a fraction in [0, 1]" if abs(g - 100 * e) <= 1e-4 else
                    " — you pruned each layer to the ratio separately; the curve prunes globally, one magnitude threshold "
                    "over all layers (pruning.global_magnitude_mask)" if abs(g - layerwise) <= 1e-6 and layerwise != e else
                    " — that is the accuracy on the training split; evaluate on the test split (data.x_test, data.y_test)"
                    if abs(g - on_train) <= 1e-6 and on_train != e else
                    " — prune the trained weights by magnitude (smallest |w| first) and evaluate without retraining")
            raise CheckFailed(f"{case}: at ratio {ratio} you returned {g:.4f}, expected {e:.4f}{hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
@_on_one_thread
def check_remove_channels(fn: Callable) -> None:
    """Check ``fn(layer, next_layer, keep)``: new copies of ``layer`` with only its output channels ``keep`` (weight
    rows and bias entries) and of ``next_layer`` with only those input channels; when the removed channels were
    zero, the smaller pair's outputs equal the original pair's. Cases: Conv2d → Conv2d (with stride and padding,
    with and without bias) and Linear → Linear; the given layers must not change."""
    from torch import nn

    from .models import _seeded

    def seeded(layer, seed, *args, **kwargs):   # the same layer at every call; the global generator is left alone
        with _seeded(seed):
            return layer(*args, **kwargs)

    conv, linear = functools.partial(seeded, nn.Conv2d), functools.partial(seeded, nn.Linear)
    cases = [
        ("Conv2d(3, 6, 3, padding=1) → Conv2d(6, 8, 3)", conv(0, 3, 6, 3, padding=1), conv(1, 6, 8, 3), [0, 2, 3, 5], (2, 3, 9, 9)),
        ("Linear(10, 8) → Linear(8, 3)", linear(2, 10, 8), linear(3, 8, 3), [1, 4, 5, 7], (4, 10)),
        ("Conv2d(2, 4, 1, bias=False) → Conv2d(4, 3, 3, padding=1)", conv(4, 2, 4, 1, bias=False), conv(5, 4, 3, 3, padding=1), [3], (2, 2, 6, 6)),
        ("Conv2d(2, 6, 5, stride=2, padding=2) → Conv2d(6, 4, 3, padding=1)", conv(6, 2, 6, 5, stride=2, padding=2),
         conv(7, 6, 4, 3, padding=1), [0, 1, 4], (2, 2, 11, 11)),
    ]
    for name, layer, after, keep_list, x_shape in cases:
        keep = torch.tensor(keep_list)
        case = f"{name}, keep={keep_list}"
        removed = torch.tensor([c for c in range(layer.weight.shape[0]) if c not in keep_list])
        with torch.no_grad():   # the channels to remove are zero, as a channel mask leaves them
            layer.weight[removed] = 0
            if layer.bias is not None:
                layer.bias[removed] = 0
        x = torch.randn(*x_shape, generator=torch.Generator().manual_seed(len(keep_list)))
        with torch.no_grad():
            expected = after(torch.relu(layer(x)))
        result = _call(fn, case, layer, after, keep.clone(), unchanged="you changed the layers you were given; build new ones "
                       "(copy.deepcopy, or new nn.Conv2d / nn.Linear) and leave the originals as they were.")
        if not isinstance(result, tuple) or len(result) != 2 or not all(isinstance(m, nn.Module) for m in result):
            raise CheckFailed(f"{fn.__name__} should return a tuple (smaller layer, smaller next layer) of nn.Modules, "
                              f"got {type(result).__name__} — on the case {case}.")
        small, small_after = result
        n_out, n_keep = layer.weight.shape[0], len(keep_list)
        if tuple(small.weight.shape) == tuple(layer.weight.shape):
            raise CheckFailed(f"{case}: the first layer still has all {n_out} output channels (weight {tuple(layer.weight.shape)}). "
                              f"Zeroing channels does not remove them: keep only the rows keep, weight[keep] (shape "
                              f"{(n_keep, *layer.weight.shape[1:])}).")
        if tuple(small.weight.shape) == (len(removed), *layer.weight.shape[1:]) and torch.equal(small.weight.detach(), layer.weight.detach()[removed]):
            raise CheckFailed(f"{case}: you kept the channels {removed.tolist()}, the ones to remove; keep lists the channels that stay.")
        _expect_tensor(small.weight, (n_keep, *layer.weight.shape[1:]), "the first layer's weight", case)
        if not torch.equal(small.weight.detach(), layer.weight.detach()[keep]):
            raise CheckFailed(f"{case}: the first layer's weight is not the original's rows {keep_list}, in order: weight[keep].")
        if layer.bias is not None:
            if small.bias is None or tuple(small.bias.shape) != (n_keep,):
                got = None if small.bias is None else tuple(small.bias.shape)
                raise CheckFailed(f"{case}: the first layer's bias has shape {got}, expected ({n_keep},) — a removed "
                                  "channel's bias goes with it: bias[keep].")
            if not torch.equal(small.bias.detach(), layer.bias.detach()[keep]):
                raise CheckFailed(f"{case}: the first layer's bias is not bias[keep]; slice it with the same indices as the weight.")
        in_shape = tuple(after.weight.shape)
        want = (in_shape[0], n_keep, *in_shape[2:])
        if tuple(small_after.weight.shape) == in_shape:
            raise CheckFailed(f"{case}: the next layer still expects {in_shape[1]} input channels (weight {in_shape}); removing "
                              f"output channels of the first layer removes the same input channels of the next: "
                              f"next_layer.weight[:, keep] (shape {want}).")
        if tuple(small_after.weight.shape) == (n_keep, *in_shape[1:]):
            raise CheckFailed(f"{case}: you removed output channels of the next layer (dim 0 of its weight); the removed "
                              f"channels are its *inputs*, dim 1: next_layer.weight[:, keep] (shape {want}).")
        _expect_tensor(small_after.weight, want, "the next layer's weight", case)
        if not torch.equal(small_after.weight.detach(), after.weight.detach()[:, keep]):
            raise CheckFailed(f"{case}: the next layer's weight is not next_layer.weight[:, keep]: its columns (input channels) "
                              "must be the kept channels, in order.")
        if after.bias is not None and (small_after.bias is None or not torch.equal(small_after.bias.detach(), after.bias.detach())):
            raise CheckFailed(f"{case}: the next layer's bias changed; it belongs to its outputs, which all stay.")
        try:
            with torch.no_grad():
                got = small_after(torch.relu(small(x)))
        except Exception as error:
            raise CheckFailed(f"{case}: running the smaller pair on an input of shape {x_shape} raised {type(error).__name__}: "
                              f"{error} — set in_channels/out_channels (in_features/out_features) to the new sizes.") from None
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            diff = "shape " + str(tuple(got.shape)) if got.shape != expected.shape else f"values off by up to {float((got - expected).abs().max()):.2e}"
            raise CheckFailed(f"{case}: the smaller pair's output differs from the original's ({diff}, expected shape "
                              f"{tuple(expected.shape)}) — keep the first layer's kernel size, stride and padding.")
    _passed(fn.__name__, len(cases))


@_recorded
@_on_one_thread
def check_iterative_prune(fn: Callable) -> None:
    """Check ``fn(model, data, final_sparsity, rounds, finetune_iterations)``: iterative global magnitude pruning of
    ``model`` in place, each round pruning the same fraction of the remaining weights (ending exactly at
    ``final_sparsity``), then fine-tuning ``finetune_iterations`` steps of ``training.train`` with the mask and
    ``data_seed=r`` in round ``r``; returns the ``rounds`` masks. Compared with :func:`lecturelib.reference.iterative_prune`."""
    from . import reference
    from .iterative import sparsity_schedule
    from .pruning import prunable_names, sparsity
    from .training import clone_model

    cases = [(0, 0.875, 3, 10), (1, 0.9, 2, 12), (2, 0.5, 1, 15)]
    for seed, final, rounds, steps in cases:
        model, data = _trained_tiny(seed, 60)
        case = f"final_sparsity={final}, rounds={rounds}, finetune_iterations={steps} (a trained MLP, seed {seed})"
        reference_model = clone_model(model)
        expected = reference.iterative_prune(reference_model, data, final, rounds, steps)
        result = _call(fn, case, model, data, final, rounds, steps)
        masks = _expect_masks(result, rounds, prunable_names(model), fn.__name__, case)
        schedule = sparsity_schedule(final, rounds)
        for r, (mask, want, target) in enumerate(zip(masks, expected, schedule), start=1):
            got = sparsity(mask)
            if abs(got - sparsity(want)) > 1e-9:
                hint = (" — the rounds prune equal fractions of ALL weights (a linear schedule); each round must prune the same "
                        "fraction of the weights still remaining: use the sparsity schedule" if abs(got - final * r / rounds) < 0.01 and rounds > 1 else
                        " — you pruned to the final sparsity at once; round r prunes to the r-th sparsity of the schedule"
                        if abs(got - final) < 0.01 and r < rounds else "")
                raise CheckFailed(f"{case}: after round {r} your mask prunes {got:.1%} of the weights, expected {target:.1%}{hint}.")
            layer_got = {k: round(float((~m).float().mean()), 3) for k, m in mask.items()}
            layer_want = {k: round(float((~m).float().mean()), 3) for k, m in want.items()}
            if layer_got != layer_want and all(abs(v - target) <= 1 / mask[k].numel() + 1e-9 for k, v in layer_got.items()):
                raise CheckFailed(f"{case}: after round {r} every layer is pruned alike, {layer_got}, expected {layer_want} — prune "
                                  "globally, one magnitude threshold over all layers (pruning.global_magnitude_mask), not layer by layer.")
        if regrown := _regrown(model, masks[-1]):
            raise CheckFailed(f"{case}: after your function {regrown} weights that the last mask prunes are non-zero — fine-tuning "
                              "without the mask lets pruned weights grow back; train with mask=the round's mask.")
        for r, (mask, want) in enumerate(zip(masks, expected), start=1):
            if any(not torch.equal(mask[k], want[k]) for k in mask):
                raise CheckFailed(f"{case}: the mask of round {r} has the right sparsity but prunes other weights than lecturelib's "
                                  f"— round {r} prunes the smallest |w| of the weights as the previous round's fine-tuning left them "
                                  f"(fine-tune {steps} steps with data_seed=r after every round).")
        if (off := _max_difference(model, reference_model)) > 1e-4:
            raise CheckFailed(f"{case}: the masks agree but the fine-tuned weights differ from lecturelib's by up to {off:.3g} — "
                              f"after each round r, fine-tune with training.train(model, data, iterations={steps}, mask=mask, "
                              "data_seed=r) and its default optimiser settings.")
    _passed(fn.__name__, len(cases))


@_recorded
@_on_one_thread
def check_find_ticket(fn: Callable) -> None:
    """Check ``fn(model, data, rounds, rate, iterations)``: IMP with reset on ``model`` (at its initialisation W_0) —
    train ``iterations`` steps, prune ``rate`` of each layer's surviving weights by magnitude, reset the survivors
    to W_0, train with the mask, repeat — returning the ``rounds`` masks and leaving ``model`` at the last level's
    trained weights. Compared with :func:`lecturelib.reference.find_ticket`."""
    from . import reference
    from .pruning import prunable_names
    from .training import clone_model

    cases = [(1, 3, 0.25, 15), (0, 2, 0.5, 20)]
    for seed, rounds, rate, iterations in cases:
        model, data = _tiny_mlp(seed), _tiny_data(seed)
        case = f"rounds={rounds}, rate={rate}, iterations={iterations} (an MLP at its initialisation, seed {seed})"
        reference_model = clone_model(model)
        expected = reference.find_ticket(reference_model, data, rounds, rate, iterations)
        result = _call(fn, case, model, data, rounds, rate, iterations)
        masks = _expect_masks(result, rounds, prunable_names(model), fn.__name__, case)
        for r, (mask, want) in enumerate(zip(masks, expected), start=1):
            for name in mask:
                got, target, n = int((~mask[name]).sum()), int((~want[name]).sum()), mask[name].numel()
                if got != target:
                    hint = (f" — you pruned {rate:.0%} of ALL of its weights each round; prune {rate:.0%} of those still left, "
                            f"so after round r a fraction 1 - (1 - rate)^r is pruned" if got == round(min(r * rate, 1) * n) and r > 1 else
                            " — prune each layer by the same rate (layerwise), not one global threshold" if r == 1 else "")
                    raise CheckFailed(f"{case}: after round {r}, {name} has {got} of {n} weights pruned, expected {target} "
                                      f"({1 - (1 - rate) ** r:.1%}){hint}.")
        if regrown := _regrown(model, masks[-1]):
            raise CheckFailed(f"{case}: at the end {regrown} weights that the last mask prunes are non-zero — train every level "
                              "with mask=the level's mask, so pruned weights stay 0.")
        if any(not torch.equal(masks[0][k], expected[0][k]) for k in masks[0]):
            raise CheckFailed(f"{case}: the mask of round 1 prunes other weights than lecturelib's — train the dense network "
                              f"first ({iterations} steps of training.train with its defaults), then prune the smallest |w| "
                              "of the *trained* weights, layer by layer.")
        for r in range(2, rounds + 1):
            if any(not torch.equal(masks[r - 1][k], expected[r - 1][k]) for k in masks[r - 1]):
                raise CheckFailed(f"{case}: round 1's mask is right but round {r}'s is not — after pruning, reset the survivors to "
                                  "W_0, the weights the model had when your function was called (save a copy of "
                                  "model.state_dict() before training; not a fresh initialisation, not the trained weights), "
                                  "then train again with the mask.")
        if (off := _max_difference(model, reference_model)) > 1e-4:
            raise CheckFailed(f"{case}: the masks are right but the model's final weights differ from lecturelib's by up to {off:.3g} "
                              f"— train the last level too ({iterations} steps from m ⊙ W_0) and leave the model there.")
    _passed(fn.__name__, len(cases))


@_recorded
@_on_one_thread
def check_random_reinit(fn: Callable) -> None:
    """Check ``fn(make_model, mask, seed)``: the random re-initialisation control — ``make_model(seed)``, a fresh
    draw of the architecture, with the weights ``mask`` prunes set to 0 (biases and kept weights as drawn);
    ``mask`` unchanged."""
    from torch import nn

    from .pruning import prunable_names

    make = _tiny_mlp   # make_model(seed): a fresh draw of the tiny MLP
    cases = []
    for seed, sparsity in ((7, 0.5), (11, 0.8)):
        template = make(0)
        generator = torch.Generator().manual_seed(seed)
        mask = {name: torch.rand(template.get_parameter(name).shape, generator=generator) >= sparsity for name in prunable_names(template)}
        cases.append((seed, sparsity, mask))
    for seed, sparsity, mask in cases:
        case = f"seed={seed}, a mask pruning {sparsity:.0%} of each weight"
        fresh = _state(make(seed))
        result = _call(fn, case, make, mask, seed, unchanged="you changed the mask in place; the ticket needs it too.")
        state = _returns(result, nn.Module, "the model (an nn.Module)", fn, case).state_dict()
        if set(state) != set(fresh):
            raise CheckFailed(f"{case}: the model holds {sorted(state)}, expected the architecture of make_model: {sorted(fresh)}.")
        for name, value in state.items():
            value = value.detach().cpu()
            if name in mask:
                alive = int((value[~mask[name]] != 0).sum())
                if alive:
                    raise CheckFailed(f"{case}: {alive} weights of {name!r} that the mask prunes are non-zero — the control keeps the "
                                      "ticket's mask: set the pruned weights to 0 (pruning.apply_mask).")
                keep = mask[name]
                if not torch.equal(value[keep], fresh[name][keep]):
                    same_init = torch.equal(value[keep], _state(make(0))[name][keep])
                    hint = (" — those are make_model(0)'s; draw the fresh initialisation from the seed you are given" if same_init else
                            " — the kept weights must be exactly make_model(seed)'s, a fresh draw from the same distribution "
                            "(not rescaled, not shuffled, not torch.randn)")
                    raise CheckFailed(f"{case}: the kept weights of {name!r} are not make_model({seed})'s initial values{hint}.")
            elif not torch.equal(value, fresh[name]):
                raise CheckFailed(f"{case}: {name!r} is not in the mask, so it must stay as make_model({seed}) drew it.")
    _passed(fn.__name__, len(cases))


@_recorded
@_on_one_thread
def check_error_barrier(fn: Callable) -> None:
    """Check ``fn(model, state_a, state_b, data, alphas)``: ``(barrier, errors)`` — the test error (1 - accuracy, a
    fraction) of the network at each ``alpha`` on the line ``(1 - alpha) state_a + alpha state_b``, and the barrier
    ``max(errors) - (errors[0] + errors[-1]) / 2``. Compared with :func:`lecturelib.stability.error_barrier`."""
    import numpy as np

    from .stability import error_barrier, path_metrics

    data = _tiny_data(3)   # two networks from different inits, one trained longer: a barrier between them
    ends = [_state(_trained_tiny(seed, steps, data=data)[0]) for seed, steps in ((3, 40), (4, 15))]
    cases = [("two networks from different inits, 11 alphas", ends[0], ends[1], [i / 10 for i in range(11)]),
             ("the same two networks, 5 alphas", ends[0], ends[1], [0.0, 0.25, 0.5, 0.75, 1.0]),
             ("a network and itself, 3 alphas", ends[0], ends[0], [0.0, 0.5, 1.0])]
    for case, a, b, alphas in cases:
        before = _state([a, b])
        want_barrier, want = error_barrier(_tiny_mlp(0), a, b, data, alphas)
        result = _call(fn, case, _tiny_mlp(0), a, b, data, list(alphas))
        if _changed([a, b], before):
            raise CheckFailed(f"{case}: you changed state_a or state_b in place; interpolate into new tensors.")
        got_barrier, errors = _returns(result, tuple, "a tuple (barrier, errors)", fn, case, length=2)
        try:
            errors = np.asarray([float(e) for e in errors])
            got_barrier = float(got_barrier)
        except (TypeError, ValueError):
            raise CheckFailed(f"{case}: return a number and a list of errors, got {type(result[0]).__name__} and "
                              f"{type(result[1]).__name__}.") from None
        if len(errors) != len(alphas):
            raise CheckFailed(f"{case}: got {len(errors)} errors, expected one per alpha ({len(alphas)}), end points included.")
        if not np.allclose(errors, want, atol=1e-6):
            _, _, losses = path_metrics(_tiny_mlp(0), a, b, data, alphas)
            i = int(np.argmax(np.abs(errors - want)))
            hint = (" — those are accuracies; the error is 1 - accuracy" if np.allclose(errors, 1 - want, atol=1e-6) else
                    " — those are percentages; use fractions" if np.allclose(errors, 100 * want, atol=1e-4) else
                    " — those are the losses; the barrier here is on the test error, 1 - accuracy" if np.allclose(errors, losses, atol=1e-5) else
                    " — alpha = 0 must give state_a and alpha = 1 state_b" if np.allclose(errors, want[::-1], atol=1e-6) else
                    " — evaluate on the test split (data.x_test, data.y_test)")
            raise CheckFailed(f"{case}: at alpha = {alphas[i]} your error is {errors[i]:.4f}, expected {want[i]:.4f}{hint}.")
        if abs(got_barrier - want_barrier) > 1e-6:
            ends_mean, top = (want[0] + want[-1]) / 2, want.max()
            hint = (" — you subtracted the larger end error; the barrier is measured from the MEAN of the two ends"
                    if abs(got_barrier - (top - max(want[0], want[-1]))) < 1e-6 else
                    " — that is the highest error itself; subtract the mean of the two end errors" if abs(got_barrier - top) < 1e-6 else
                    " — that is max - min over the path; subtract the mean of the two END errors" if abs(got_barrier - (top - want.min())) < 1e-6 else
                    " — you subtracted the smaller end error; the barrier is measured from the MEAN of the two ends"
                    if abs(got_barrier - (top - min(want[0], want[-1]))) < 1e-6 else
                    " — that is the path's mean minus the ends' mean; take the path's maximum" if abs(got_barrier - (want.mean() - ends_mean)) < 1e-6 else "")
            raise CheckFailed(f"{case}: barrier {got_barrier:.4f}, expected max(errors) - (errors[0] + errors[-1]) / 2 = "
                              f"{top:.4f} - {ends_mean:.4f} = {want_barrier:.4f}{hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_dropout_module(cls: Callable[[float], torch.nn.Module]) -> None:
    """Check a dropout layer ``cls(p)``, an ``nn.Module``: in training mode each entry is zeroed with probability ``p``
    (a new mask at every call, torch's random numbers) and the survivors are multiplied by ``1 / (1 - p)``; in eval
    mode it is the identity — no dropping and no scaling; the input is never modified in place."""
    for p in (0.5, 0.2, 0.8):
        case = f"{getattr(cls, '__name__', 'cls')}({p})"
        layer = _call(cls, case, p)
        if not isinstance(layer, torch.nn.Module):
            raise CheckFailed(f"{case} should be a torch.nn.Module (subclass nn.Module and call super().__init__()), got {type(layer).__name__}.")
        x = torch.ones(100_000)
        layer.train()
        torch.manual_seed(0)
        out = _call(layer, f"{case} in training mode on ones(100000)", x.clone(), unchanged="changed its input in place; return a new "
                    "tensor (x * keep / (1 - p)).")
        _expect_tensor(out, x.shape, case, "training mode on ones(100000)")
        _expect_inverted_dropout(out, p, f"{case} in training mode")
        again = layer(x.clone())
        if torch.equal(again == 0, out == 0):
            raise CheckFailed(f"{case} in training mode: two calls dropped exactly the same entries. Dropout draws a new mask at "
                              "every call (torch.rand_like(x) inside forward); a mask drawn once and kept is a pruning mask.")
        layer.eval()
        x = torch.randn(8, 50, generator=torch.Generator().manual_seed(1))
        out = _call(layer, f"{case} in eval mode", x.clone())
        _expect_tensor(out, x.shape, case, "eval mode on x (8, 50)")
        if not torch.equal(out, x):
            zeros = int((out == 0).sum())
            hint = (f" — {zeros} entries are 0: dropout is off in eval mode (check self.training)" if zeros else
                    " — you scaled at test time by (1 - p); inverted dropout scales during training only, so eval is the identity"
                    if torch.allclose(out, x * (1 - p)) else " — in eval mode return x unchanged")
            raise CheckFailed(f"{case} in eval mode: the output differs from the input{hint}.")
    layer = _call(cls, f"{getattr(cls, '__name__', 'cls')}(0.0)", 0.0)
    layer.train()
    x = torch.randn(100)
    if not torch.equal(_call(layer, f"{getattr(cls, '__name__', 'cls')}(0.0) in training mode", x.clone()), x):
        raise CheckFailed(f"{getattr(cls, '__name__', 'cls')}(0.0) in training mode should return its input unchanged (nothing dropped, 1/(1-0) = 1).")
    _passed(getattr(cls, "__name__", "your dropout layer"), 4)


@_recorded
@_on_one_thread
def check_mc_dropout_average(fn: Callable) -> None:
    """Check ``fn(model, x, samples)``: the Monte-Carlo dropout prediction ``(N, classes)``, the mean of the softmax
    probabilities of ``samples`` forward passes with the dropout layers in training mode; the model's modes restored.

    With torch seeded, one pass after the other (as lecturelib's :func:`~lecturelib.dropout.mc_dropout_average` does)
    gives exactly lecturelib's result; another order of the random draws is compared within the sampling noise.
    """
    from .dropout import mc_dropout_average, mlp_dropout

    generator = torch.Generator().manual_seed(0)
    cases = []
    for seed, scale in ((0, 20.0), (1, 1.0)):
        model = mlp_dropout((1, 8, 8), 10, hidden=(16, 8), p=0.5, seed=seed)
        with torch.no_grad():
            model.fc3.weight.mul_(scale)   # sharp logits: the mean of softmaxes then differs from the softmax of the mean
        cases.append((f"an 8x8 -> 16 -> 8 -> 10 MLP with dropout 0.5 (logits x{scale:g}), x (10, 1, 8, 8), 300 samples",
                      model.eval(), torch.randn(10, 1, 8, 8, generator=generator)))
    for case, model, x in cases:
        modes = [m.training for m in model.modules()]
        torch.manual_seed(1)
        result = _call(fn, case, model, x.clone(), 300)
        _expect_tensor(result, (len(x), 10), fn.__name__, case)
        result = result.detach().float()
        if [m.training for m in model.modules()] != modes:
            raise CheckFailed(f"{case}: the model was in eval mode and is not any more; restore every module's mode "
                              "(model.eval() at the end, or remember each module's .training).")
        if not torch.allclose(result.sum(1), torch.ones(len(x)), atol=1e-4):
            raise CheckFailed(f"{case}: the rows sum to {float(result.sum(1)[0]):.3g}, not 1; average the probabilities "
                              "(torch.softmax(logits, dim=1)), not the logits.")
        with torch.no_grad():
            deterministic = torch.softmax(model(x), dim=1)
        if torch.allclose(result, deterministic, atol=1e-6):
            raise CheckFailed(f"{case}: every pass gave the same output — dropout was off. Put the dropout layers "
                              "(or the model) in training mode for the passes, then restore eval mode.")
        same_draws = mc_dropout_average(model, x, 300, seed=1)
        if torch.allclose(result, same_draws, atol=1e-5):
            continue
        with torch.no_grad(), torch.random.fork_rng():
            model.train()
            torch.manual_seed(1)
            logits = torch.stack([model(x) for _ in range(300)]).mean(0)
            model.eval()
        if torch.allclose(result, torch.softmax(logits, 1), atol=1e-5):
            raise CheckFailed(f"{case}: you averaged the logits and took one softmax; average the probabilities of the "
                              "passes instead (the mean of the softmaxes) — with sharp logits the two differ.")
        off = float((result - mc_dropout_average(model, x, 300, seed=2)).abs().max())
        if off > 0.15:
            raise CheckFailed(f"{case}: the probabilities differ from lecturelib's Monte-Carlo average by up to {off:.3f}, "
                              "more than the sampling noise of 300 samples (0.15).")
    _passed(fn.__name__, len(cases))


def _small_mlp(seed: int, hidden=(12, 6), inputs: int = 6):
    from . import models
    return models.mlp((inputs,), 3, hidden=hidden, seed=seed)


@_recorded
def check_prune_model(fn: Callable) -> None:
    """Check ``fn(model, sparsity)``: prune every ``Linear`` weight of ``model`` (not the biases) to ``sparsity``, layer by
    layer (``round(sparsity * n)`` smallest ``|w|`` of each layer), zeroing them in the model; return the mask ``{name: bool}``."""
    from .finegrained import prune_model
    from .training import clone_model

    cases = [("an MLP 6 -> 12 -> 6 -> 3 (fc1 72, fc2 72, fc3 18 weights), sparsity 0.3", _small_mlp(0), 0.3),
             ("an MLP 6 -> 12 -> 6 -> 3 whose fc1 weights are 10x larger, sparsity 0.5", _small_mlp(1), 0.5),
             ("an MLP 6 -> 12 -> 6 -> 3, sparsity 0.0", _small_mlp(2), 0.0)]
    with torch.no_grad():
        cases[1][1].fc1.weight.mul_(10)   # a global threshold would spare fc1 and empty the others
    for case, model, sparsity in cases:
        reference = clone_model(model)
        expected = prune_model(reference, sparsity)
        result = _returns(_call(fn, case, model, sparsity), dict, "the mask, a dict {name: bool tensor}", fn, case)
        if set(result) != set(expected):
            extra, missing = sorted(set(result) - set(expected)), sorted(set(expected) - set(result))
            hint = " — prune the weights only; the biases are few and stay dense" if any(n.endswith("bias") for n in extra) else ""
            raise CheckFailed(f"{case}: the mask covers {sorted(result)}, expected {sorted(expected)} "
                              f"(extra {extra}, missing {missing}){hint}.")
        params = dict(model.named_parameters())
        for name, keep in expected.items():
            got = result[name]
            _expect_tensor(got, keep.shape, f"{fn.__name__}(...)[{name!r}]", case)
            got = got.bool()
            if not torch.equal(got, keep):
                n, zeros, want = keep.numel(), int((~got).sum()), int((~keep).sum())
                hint = (_truncation_hint(zeros, sparsity, n) or
                        " — prune each layer to the sparsity on its own (layer-wise), not with one threshold for the whole model"
                        if zeros != want else " — prune the smallest |w| of the layer")
                raise CheckFailed(f"{case}: {name!r}: your mask prunes {zeros} of {n} weights, expected {want} "
                                  f"(round({sparsity} * {n})){'' if zeros != want else ' but not the same ones'}{hint}.")
            if revived := _regrown(params, {name: keep}):
                raise CheckFailed(f"{case}: {name!r}: the mask is right but {revived} pruned weights of the model are not 0 — "
                                  "apply the mask to the model too (weight.mul_(mask) under torch.no_grad()).")
    _passed(fn.__name__, len(cases))


@_recorded
def check_finetune_with_mask(fn: Callable) -> None:
    """Check ``fn(model, mask, x, y, steps, lr)``: ``steps`` full-batch steps of ``torch.optim.SGD(model.parameters(), lr=lr,
    momentum=0.9)`` on the cross-entropy of ``(x, y)``, with the pruned weights 0 before the first forward pass and after
    every optimiser step; the model is changed in place. Compared with :func:`lecturelib.finegrained.finetune_with_mask`."""
    from .finegrained import finetune_with_mask, prune_model
    from .training import clone_model

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=generator), torch.randint(0, 3, (40,), generator=generator)
    cases = []
    for seed, sparsity, steps in ((0, 0.5, 1), (1, 0.8, 15)):
        model = _small_mlp(seed)
        mask = {name: keep.clone() for name, keep in prune_model(clone_model(model), sparsity).items()}
        # the model itself still holds its dense weights: the first forward pass must already see the mask
        cases.append((f"an MLP 6 -> 12 -> 6 -> 3, mask of sparsity {sparsity}, {steps} step{'s' * (steps > 1)} at lr 0.1", model, mask, steps))
    for case, model, mask, steps in cases:
        reference = finetune_with_mask(clone_model(model), mask, x, y, steps, 0.1)
        mask_given = {k: v.clone() for k, v in mask.items()}
        returned = _call(fn, case, model, mask_given, x.clone(), y.clone(), steps, 0.1)
        if returned is not None and returned is not model and isinstance(returned, torch.nn.Module):
            model = returned   # a copy was fine-tuned and returned: judge that one
        if _changed(mask_given, _state(mask)):
            raise CheckFailed(f"{case}: you changed the mask; it is fixed during fine-tuning.")
        revived = {name: _regrown(model, {name: keep}) for name, keep in mask.items()}
        if sum(revived.values()):
            name = max(revived, key=revived.get)
            raise CheckFailed(f"{case}: after fine-tuning {sum(revived.values())} pruned weights are non-zero ({revived[name]} in "
                              f"{name!r}) — re-apply the mask after every optimizer.step(): the gradient (and the momentum) of a "
                              "pruned weight is not 0, so each step moves it again.")
        if (off := _max_difference(model, reference)) > 1e-5:
            if steps == 1:
                hint = (" — with one step the difference comes from the start: zero the pruned weights before the first forward "
                        "pass (the model arrives with its dense weights), and use SGD(lr, momentum=0.9) on the full batch")
            else:
                hint = (" — follow the recipe exactly: full batch, optimizer.zero_grad() every step, "
                        "torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), cross-entropy")
            raise CheckFailed(f"{case}: the surviving weights differ from lecturelib's by up to {off:.3g}{hint}.")
    _passed(fn.__name__, len(cases))


@_recorded
def check_sensitivity_scan(fn: Callable) -> None:
    """Check ``fn(model, x, y, sparsities)``: ``{weight name: [accuracy in [0, 1] with only that layer pruned to s (by
    magnitude, no fine-tuning), for each s]}``, every entry starting from the model as given; the model unchanged."""
    from .finegrained import accuracy, sensitivity_scan
    from .pruning import apply_mask, layerwise_magnitude_mask
    from .training import clone_model

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60, 6, generator=generator)
    teacher = _small_mlp(5)
    with torch.no_grad():
        y = teacher(x).argmax(1)
    cases = [("the MLP 6 -> 12 -> 6 -> 3 that labelled x (60, 6), sparsities [0.5, 0.8, 0.95]", teacher, [0.5, 0.8, 0.95]),
             ("another MLP 6 -> 12 -> 6 -> 3 on the same x, sparsities [0.9, 0.3]", _small_mlp(6), [0.9, 0.3])]
    for case, model, sparsities in cases:
        result = _call(fn, case, model, x.clone(), y.clone(), list(sparsities), unchanged="the model you were given changed — each scan "
                       "entry must prune a copy (training.clone_model or copy.deepcopy), or the next entries start from pruned weights.")
        expected = sensitivity_scan(model, x, y, sparsities)
        if not isinstance(result, dict) or set(result) != set(expected):
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise CheckFailed(f"{case}: expected a dict with one entry per weight {sorted(expected)}, got {got}.")
        for name, want in expected.items():
            got = [float(a) for a in result[name]]
            if len(got) != len(want):
                raise CheckFailed(f"{case}: {name!r} has {len(got)} accuracies, expected one per sparsity ({len(want)}).")
            if all(abs(g - w) < 1e-6 for g, w in zip(got, want)):
                continue
            all_layers = [accuracy(apply_mask(clone_model(model), layerwise_magnitude_mask(model, s)), x, y) for s in sparsities]
            hint = (" — that is a percentage; return fractions in [0, 1]" if all(abs(g - 100 * w) < 1e-4 for g, w in zip(got, want)) else
                    " — you pruned every layer at once; the scan prunes one layer at a time, the others stay dense"
                    if all(abs(g - a) < 1e-6 for g, a in zip(got, all_layers)) else "")
            i = next(i for i, (g, w) in enumerate(zip(got, want)) if abs(g - w) >= 1e-6)
            raise CheckFailed(f"{case}: {name!r} pruned to {sparsities[i]}: accuracy {got[i]:.4g}, expected {want[i]:.4g}{hint}.")
    _passed(fn.__name__, len(cases))
