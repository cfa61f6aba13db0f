"""Self-checks for removing output units, survivor histograms and inverted dropout: right answers pass,
typical mistakes fail with a message that names the mistake."""

import pytest
import torch

from lecturelib import checks


# --- check_remove_output_units -----------------------------------------------------------------

def good_remove(weight, bias, n_keep):
    kept = torch.topk(weight.norm(dim=1), n_keep).indices.sort().values
    return weight[kept], bias[kept]


def zeroing_remove(weight, bias, n_keep):
    out = weight.clone()
    drop = torch.topk(weight.norm(dim=1), weight.shape[0] - n_keep, largest=False).indices
    out[drop] = 0
    return out, bias


def unsorted_remove(weight, bias, n_keep):
    kept = torch.topk(weight.norm(dim=1), n_keep).indices
    return weight[kept], bias[kept]


def first_rows_remove(weight, bias, n_keep):
    return weight[:n_keep], bias[:n_keep]


def test_remove_output_units_passes_a_correct_solution(capsys):
    checks.check_remove_output_units(good_remove)
    assert "all 3 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (zeroing_remove, "Zeroing rows does not remove them"),
    (unsorted_remove, "sorted them by norm"),
    (first_rows_remove, "largest L2 norm"),
])
def test_remove_output_units_explains_mistakes(fn, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_remove_output_units(fn)


# --- check_survivor_histogram ------------------------------------------------------------------

def good_hist(weights, edges):
    w = weights.reshape(-1)
    w = w[(w != 0) & (w >= edges[0]) & (w <= edges[-1])]
    return torch.bincount((torch.bucketize(w, edges, right=True) - 1).clamp(max=len(edges) - 2), minlength=len(edges) - 1)


def hist_with_zeros(weights, edges):
    w = weights.reshape(-1)
    w = w[(w >= edges[0]) & (w <= edges[-1])]
    return torch.bincount((torch.bucketize(w, edges, right=True) - 1).clamp(max=len(edges) - 2), minlength=len(edges) - 1)


def hist_histc(weights, edges):
    w = weights.reshape(-1)
    return torch.histc(w[w != 0], bins=len(edges) - 1)  # its own range, not the edges


def hist_wrong_shape(weights, edges):
    return good_hist(weights, edges)[:-1]


def test_survivor_histogram_passes_a_correct_solution(capsys):
    checks.check_survivor_histogram(good_hist)
    assert "all 3 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (hist_with_zeros, "you counted the pruned"),
    (hist_histc, "bin"),
    (hist_wrong_shape, "returned shape"),
])
def test_survivor_histogram_explains_mistakes(fn, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_survivor_histogram(fn)


# --- check_inverted_dropout --------------------------------------------------------------------

def good_dropout(x, p, generator):
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)


def unscaled_dropout(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p)


def times_keep_dropout(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p) * (1 - p)


def inverted_p_dropout(x, p, generator):
    keep = torch.rand(x.shape, generator=generator) < p
    return x * keep / (1 - p) if p > 0 else x


def global_rng_dropout(x, p, generator):
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def test_inverted_dropout_passes_a_correct_solution(capsys):
    checks.check_inverted_dropout(good_dropout)
    assert "all 5 cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (unscaled_dropout, "forgot to scale"),
    (times_keep_dropout, "multiplied by \\(1 - p\\)"),
    (inverted_p_dropout, "probability 1 - p"),
    (global_rng_dropout, "generator"),
])
def test_inverted_dropout_explains_mistakes(fn, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_inverted_dropout(fn)
