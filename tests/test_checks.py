"""The exercises' self-checks (lecturelib.checks) against the mistakes students make.

Every ``check_*`` passes the solution cell of the notebook that calls it (executed here, outside the
notebook) and lecturelib's own implementation where there is one, and fails each realistic wrong
answer of :data:`WRONG` with a message naming the case and what differs. A check without three
wrong answers here fails :func:`test_every_check_is_tested_against_three_wrong_answers`.
"""

from __future__ import annotations

import ast
import copy
import json
import math

import nbformat
import pytest
import torch

from conftest import NOTEBOOK_DIR, load_tool
from lecturelib import checks, data_importance, distributions, dropout, finegrained, iterative, models, pruning, reference, stability, training

student_edition = load_tool("student_edition")
CHECKS = sorted(name for name in dir(checks) if name.startswith("check_"))


# --- check_prune_smallest ------------------------------------------------------------------------

def prune_in_place(w, sparsity):
    w[w.abs().argsort()[:round(sparsity * len(w))]] = 0
    return w


def prune_truncating(w, sparsity):
    out = w.clone()
    out[w.abs().argsort()[:int(sparsity * len(w))]] = 0
    return out


def prune_rounding_up(w, sparsity):
    out = w.clone()
    out[w.abs().argsort()[:math.ceil(sparsity * len(w))]] = 0
    return out


def prune_signed(w, sparsity):
    out = w.clone()
    out[w.argsort()[:round(sparsity * len(w))]] = 0
    return out


def prune_largest(w, sparsity):
    out = w.clone()
    out[w.abs().argsort(descending=True)[:round(sparsity * len(w))]] = 0
    return out


def prune_by_threshold(w, sparsity):
    n = round(sparsity * len(w))
    out = w.clone()
    if n:
        out[w.abs() <= w.abs().kthvalue(n).values] = 0
    return out


def prune_returning_the_mask(w, sparsity):
    keep = torch.ones_like(w)
    keep[w.abs().argsort()[:round(sparsity * len(w))]] = 0
    return keep


# --- check_remove_output_units -------------------------------------------------------------------

def remove_by_zeroing(weight, bias, n_keep):
    out = weight.clone()
    out[torch.topk(weight.norm(dim=1), weight.shape[0] - n_keep, largest=False).indices] = 0
    return out, bias


def remove_sorted_by_norm(weight, bias, n_keep):
    kept = torch.topk(weight.norm(dim=1), n_keep).indices
    return weight[kept], bias[kept]


def remove_first_rows(weight, bias, n_keep):
    return weight[:n_keep], bias[:n_keep]


def remove_by_l1(weight, bias, n_keep):
    kept = torch.topk(weight.abs().sum(dim=1), n_keep).indices.sort().values
    return weight[kept], bias[kept]


def remove_by_column_norms(weight, bias, n_keep):
    kept = torch.topk(weight.norm(dim=0), min(n_keep, weight.shape[1])).indices.sort().values
    return weight[kept], bias[kept]


def remove_keeping_the_bias(weight, bias, n_keep):
    kept = torch.topk(weight.norm(dim=1), n_keep).indices.sort().values
    return weight[kept], bias[:n_keep]


# --- check_survivor_histogram --------------------------------------------------------------------

def _bins(w, edges):
    return torch.bincount((torch.bucketize(w, edges, right=True) - 1).clamp(max=len(edges) - 2), minlength=len(edges) - 1)


def hist_with_zeros(weights, edges):
    w = weights.reshape(-1)
    return _bins(w[(w >= edges[0]) & (w <= edges[-1])], edges)


def hist_histc(weights, edges):
    w = weights.reshape(-1)
    return torch.histc(w[w != 0], bins=len(edges) - 1)   # its own range, not the edges


def hist_one_bin_short(weights, edges):
    w = weights.reshape(-1)
    return _bins(w[(w != 0) & (w >= edges[0]) & (w <= edges[-1])], edges)[:-1]


def hist_right_closed(weights, edges):
    w = weights.reshape(-1)
    w = w[(w != 0) & (w >= edges[0]) & (w <= edges[-1])]
    return torch.bincount((torch.bucketize(w, edges) - 1).clamp(min=0), minlength=len(edges) - 1)


def hist_open_last_bin(weights, edges):
    w = weights.reshape(-1)
    return _bins(w[(w != 0) & (w >= edges[0]) & (w < edges[-1])], edges)


def hist_not_flattened(weights, edges):
    w = weights[(weights != 0) & (weights >= edges[0]) & (weights <= edges[-1])] if weights.dim() == 1 else weights
    return _bins(w, edges)


# --- check_inverted_dropout ----------------------------------------------------------------------

def dropout_unscaled(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p)


def dropout_times_keep(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p) * (1 - p)


def dropout_keeping_with_p(x, p, generator):
    keep = torch.rand(x.shape, generator=generator) < p
    return x * keep / (1 - p) if p > 0 else x


def dropout_global_rng(x, p, generator):
    return x * (torch.rand(x.shape) >= p) / (1 - p)


# --- check_update_mask ---------------------------------------------------------------------------

def _update(weight, mask, n_prune):
    scores = torch.where(mask, weight.abs(), torch.full_like(weight, -1.0)).reshape(-1)
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    keep[torch.topk(scores, n_prune, largest=False).indices] = False
    return keep.reshape(weight.shape)


def mask_ignoring_the_old_mask(weight, mask, sparsity):
    return _update(weight, torch.ones_like(mask), round(sparsity * weight.numel()))


def mask_pruning_on_top(weight, mask, sparsity):   # round(s * n) MORE weights, not s in total
    return _update(weight, mask, min(int((~mask).sum()) + round(sparsity * weight.numel()), weight.numel()))


def mask_truncating(weight, mask, sparsity):
    return _update(weight, mask, int(sparsity * weight.numel()))


def mask_in_place(weight, mask, sparsity):
    mask &= _update(weight, mask, round(sparsity * weight.numel()))
    return mask


def mask_signed(weight, mask, sparsity):
    scores = torch.where(mask, weight, torch.full_like(weight, -math.inf)).reshape(-1)
    keep = torch.ones(weight.numel(), dtype=torch.bool)
    keep[torch.topk(scores, round(sparsity * weight.numel()), largest=False).indices] = False
    return keep.reshape(weight.shape)


# --- check_largest_safe_ratio --------------------------------------------------------------------

def safe_any_within(sparsities, accuracies, reference, tolerance):   # a later recovery counts
    ok = [r for r, a in zip(sparsities, accuracies) if a >= reference - tolerance]
    return max(ok) if ok else 0.0


def safe_strict(sparsities, accuracies, reference, tolerance):
    best = 0.0
    for r, a in zip(sparsities, accuracies):
        if a <= reference - tolerance:
            break
        best = r
    return best


def safe_index(sparsities, accuracies, reference, tolerance):
    best = 0
    for i, a in enumerate(accuracies):
        if a < reference - tolerance:
            break
        best = i
    return best


def safe_first_failing(sparsities, accuracies, reference, tolerance):
    return next((r for r, a in zip(sparsities, accuracies) if a < reference - tolerance), sparsities[-1])


def safe_none_when_none(sparsities, accuracies, reference, tolerance):
    best = None
    for r, a in zip(sparsities, accuracies):
        if a < reference - tolerance:
            break
        best = r
    return best


# --- check_flatten_feature_indices ---------------------------------------------------------------

def features(keep, height, width):
    return (keep[:, None] * height * width + torch.arange(height * width)).flatten()


def features_one_per_channel(keep, height, width):
    return keep


def features_not_multiplied(keep, height, width):
    return (keep[:, None] + torch.arange(height * width)).flatten()


def features_pixel_major(keep, height, width):
    return (keep[None, :] * height * width + torch.arange(height * width)[:, None]).flatten()


def features_channels_last(keep, height, width):
    return (torch.arange(height * width)[:, None] * (int(keep.max()) + 1) + keep).flatten()


def features_as_floats(keep, height, width):
    return features(keep, height, width).float()


def features_height_squared(keep, height, width):
    return (keep[:, None] * height * height + torch.arange(height * width)).flatten()


def features_as_list(keep, height, width):
    return features(keep, height, width).tolist()


# --- check_sparsity_schedule ---------------------------------------------------------------------

def schedule_linear(final, rounds):
    return [final * (r + 1) / rounds for r in range(rounds)]


def schedule_with_start(final, rounds):
    return [0.0] + iterative.sparsity_schedule(final, rounds)


def schedule_same_rate_wrong_end(final, rounds):
    return iterative.iterative_sparsities(final / rounds, rounds)


def schedule_by_powers_of_the_rate(final, rounds):   # ends at 0.4999999999999999 for (0.5, 2)
    rate = 1 - (1 - final) ** (1 / rounds)
    return [1 - (1 - rate) ** r for r in range(1, rounds + 1)]


def schedule_rounded(final, rounds):
    return [round(s, 3) for s in iterative.sparsity_schedule(final, rounds)]


# --- check_ticket_weights ------------------------------------------------------------------------

def ticket_missing_biases(init, mask):
    return {n: v * mask[n] for n, v in init.items() if n in mask}


def ticket_in_place(init, mask):
    return {n: v.mul_(mask[n]) if n in mask else v for n, v in init.items()}


def ticket_unmasked(init, mask):
    return {n: v.clone() for n, v in init.items()}


def ticket_rescaled(init, mask):
    return {n: v * mask[n] / mask[n].float().mean() if n in mask else v.clone() for n, v in init.items()}


def ticket_zeroed_biases(init, mask):
    return {n: v * mask[n] if n in mask else torch.zeros_like(v) for n, v in init.items()}


def ticket_as_list(init, mask):
    return [v * mask[n] if n in mask else v for n, v in init.items()]


# --- check_interpolate ---------------------------------------------------------------------------

def interpolate_swapped(a, b, alpha):
    return {n: alpha * a[n] + (1 - alpha) * b[n] if a[n].is_floating_point() else a[n].clone() for n in a}


def interpolate_not_convex(a, b, alpha):
    return {n: a[n] + alpha * b[n] if a[n].is_floating_point() else a[n].clone() for n in a}


def interpolate_counters_too(a, b, alpha):
    return {n: (1 - alpha) * a[n] + alpha * b[n] for n in a}


def interpolate_in_place(a, b, alpha):
    return {n: a[n].mul_(1 - alpha).add_(alpha * b[n]) if a[n].is_floating_point() else a[n] for n in a}


# --- the catalogue: check -> [(wrong answer, fragment of its message)] ---------------------------

WRONG = {
    "check_prune_smallest": [
        (prune_in_place, "modified it in place"),
        (prune_truncating, r"w of length 7, sparsity=0\.4: 2 weights are zero, expected round\(0\.4 \* 7\) = 3 .* int\(\) truncates"),
        (prune_rounding_up, r"w of length 6, sparsity=0\.7: 5 weights are zero, expected round\(0\.7 \* 6\) = 4"),
        (prune_signed, "not by the signed value"),
        (prune_largest, r"pruned the largest \|w\|.*expected \[1, 4\]"),
        (prune_by_threshold, "threshold test"),
        (prune_returning_the_mask, r"position 0 holds 1, expected the weight itself, 0\.5"),
    ],
    "check_remove_output_units": [
        (remove_by_zeroing, "Zeroing rows does not remove them"),
        (remove_sorted_by_norm, "sorted them by norm"),
        (remove_first_rows, r"weight \(4, 2\), n_keep=2: you kept the rows \[0, 1\], expected \[0, 2\]"),
        (remove_by_l1, r"kept the rows \[0, 1\], expected \[1, 3\].*L1 norm"),
        (remove_by_column_norms, r"expected \[0, 2\]"),
        (remove_keeping_the_bias, "bias entries do not belong"),
    ],
    "check_survivor_histogram": [
        (hist_with_zeros, "you counted the pruned"),
        (hist_histc, r"expected \[1, 2, 3, 2\]"),
        (hist_one_bin_short, "returned shape"),
        (hist_right_closed, "belongs to the bin on its right"),
        (hist_open_last_bin, "last bin is closed"),
        (hist_not_flattened, r"raised RuntimeError.*weights \(20, 25\)"),
    ],
    "check_inverted_dropout": [
        (dropout_unscaled, "forgot to scale"),
        (dropout_times_keep, r"multiplied by \(1 - p\)"),
        (dropout_keeping_with_p, "probability 1 - p"),
        (dropout_global_rng, "generator"),
    ],
    "check_update_mask": [
        (mask_ignoring_the_old_mask, "stay pruned"),
        (mask_pruning_on_top, "counts the weights pruned before"),
        (mask_truncating, r"prunes 57 of 64 weights, expected round\(0\.9 \* 64\) = 58 — int\(\) truncates"),
        (mask_in_place, "in place"),
        (mask_signed, "was pruned while one with"),
    ],
    "check_largest_safe_ratio": [
        (safe_any_within, "recovery does not count"),
        (safe_strict, "use >="),
        (safe_index, "you returned the index 1"),
        (safe_first_failing, r"got 0\.9, expected 0\.8"),
        (safe_none_when_none, "got NoneType"),
    ],
    "check_flatten_feature_indices": [
        (features_one_per_channel, "one per kept channel"),
        (features_not_multiplied, r"not multiplied by height\*width"),
        (features_pixel_major, "wrong order"),
        (features_channels_last, "channel-first"),
        (features_as_floats, "dtype torch.float32"),
        (features_height_squared, "height=2, width=3: position 0 holds feature 8"),
        (features_as_list, "should return a torch.Tensor"),
    ],
    "check_sparsity_schedule": [
        (schedule_linear, "linear schedule"),
        (schedule_with_start, "dense starting point"),
        (schedule_same_rate_wrong_end, "not at the requested"),
        (schedule_by_powers_of_the_rate, r"final_sparsity=0\.5, rounds=2: the schedule ends at 0\.4999999999999999, not at the requested 0\.5"),
        (schedule_rounded, r"ends at 0\.875, not at the requested 0\.875|the same rate every round"),
    ],
    "check_ticket_weights": [
        (ticket_missing_biases, "lacks"),
        (ticket_in_place, "in place"),
        (ticket_unmasked, "pruned entries"),
        (ticket_rescaled, "differ from their initial values"),
        (ticket_zeroed_biases, "copied from init_state"),
        (ticket_as_list, "should return a dict"),
    ],
    "check_interpolate": [
        (interpolate_swapped, "swapped the roles"),
        (interpolate_not_convex, "add up to 1"),
        (interpolate_counters_too, "integer tensor"),
        (interpolate_in_place, "in place"),
    ],
}

# lecturelib's own implementation of an exercise, where it has one
LIBRARY = {
    "check_sparsity_schedule": [iterative.sparsity_schedule],
    "check_largest_safe_ratio": [iterative.largest_ratio_within],
    "check_interpolate": [stability.interpolate],
}


# --- chapters 1-5: the algorithm exercises ----------------------------------------------------------

def contribution_by_size(w, x, sparsity):            # magnitude pruning: ignores the inputs
    out = w.clone()
    out[w.abs().argsort()[:round(sparsity * len(w))]] = 0
    return out


def contribution_signed_mean(w, x, sparsity):        # |w_i · mean x_i|: standardised inputs average to about 0
    out = w.clone()
    out[(w * x.mean(0)).abs().argsort()[:round(sparsity * len(w))]] = 0
    return out


def contribution_rms(w, x, sparsity):                # the wrong norm of the inputs: root mean square
    out = w.clone()
    out[(w.abs() * x.pow(2).mean(0).sqrt()).argsort()[:round(sparsity * len(w))]] = 0
    return out


def contribution_truncating(w, x, sparsity):
    out = w.clone()
    out[(w.abs() * x.abs().mean(0)).argsort()[:int(sparsity * len(w))]] = 0
    return out


def contribution_in_place(w, x, sparsity):
    w[(w.abs() * x.abs().mean(0)).argsort()[:round(sparsity * len(w))]] = 0
    return w


def apoz_before_relu(model, x):                     # zeros of the pre-activation: almost never exactly 0
    return (model.fc1(x.flatten(1)) == 0).float().mean(0)


def apoz_active_fraction(model, x):                 # 1 - APoZ
    return (torch.relu(model.fc1(x.flatten(1))) > 0).float().mean(0)


def apoz_percent(model, x):
    return 100 * (torch.relu(model.fc1(x.flatten(1))) == 0).float().mean(0)


def apoz_per_input(model, x):                       # averaged over the units instead of the inputs
    return (torch.relu(model.fc1(x.flatten(1))) == 0).float().mean(1)


WRONG_CHAPTERS_1_5 = {
    "check_prune_by_contribution": [
        (contribution_by_size, r"sparsity=0\.5: you pruned the positions \[0, 1, 4\], expected \[0, 2, 4\].*smallest \|w\|"),
        (contribution_signed_mean, r"averaged the signed inputs"),
        (contribution_rms, r"lit once, brightly.*root mean square"),
        (contribution_truncating, r"w of length 7.*2 weights are zero, expected round\(0\.4 \* 7\) = 3 — int\(\) truncates"),
        (contribution_in_place, "modified it in place"),
    ],
    "check_hidden_apoz": [
        (apoz_before_relu, r"unit 3 has APoZ 0, expected 0\.99 .*after the ReLU"),
        (apoz_active_fraction, r"that is 1 − APoZ"),
        (apoz_percent, r"that is a percentage"),
        (apoz_per_input, r"one number per input \(100\); APoZ is one number per hidden unit \(4\)"),
    ],
}
WRONG.update(WRONG_CHAPTERS_1_5)

def _hole(pruned, retrained, *, zeros_inside=False, per_weight=False, edge_inside=False, p99_of_all=False, t_from=None):
    alive = pruned != 0
    t = (t_from if t_from is not None else pruned)[(t_from if t_from is not None else pruned) != 0].abs().min()
    after = retrained.abs() if zeros_inside else retrained[alive].abs()
    inside = (after <= t) if edge_inside else (after < t)
    refilled = inside.sum() / pruned.numel() if per_weight else inside.float().mean()
    growth = (retrained.abs().flatten().quantile(0.99) / pruned.abs().flatten().quantile(0.99) if p99_of_all else
              retrained[alive].abs().quantile(0.99) / pruned[alive].abs().quantile(0.99))
    return {"threshold": float(t), "refilled": float(refilled), "p99_growth": float(growth)}


def hole_counting_zeros(pruned, retrained):
    return _hole(pruned, retrained, zeros_inside=True)


def hole_over_all_weights(pruned, retrained):
    return _hole(pruned, retrained, per_weight=True)


def hole_edge_inside(pruned, retrained):
    return _hole(pruned, retrained, edge_inside=True)


def hole_p99_with_zeros(pruned, retrained):
    return _hole(pruned, retrained, p99_of_all=True)


def hole_threshold_after_retraining(pruned, retrained):
    return _hole(pruned, retrained, t_from=retrained)


class DropoutScaledAtTest(torch.nn.Module):     # classic dropout: scales at test time instead of during training
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p) if self.training else x * (1 - self.p)


class DropoutMaskOnce(torch.nn.Module):         # one mask drawn and kept: that is pruning
    def __init__(self, p):
        super().__init__()
        self.p, self.keep = p, None

    def forward(self, x):
        if not self.training:
            return x
        if self.keep is None or self.keep.shape != x.shape:
            self.keep = torch.rand_like(x) >= self.p
        return x * self.keep / (1 - self.p)


class DropoutAlsoInEval(torch.nn.Module):       # ignores self.training
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p) / (1 - self.p)


class DropoutInPlace(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x.mul_((torch.rand_like(x) >= self.p) / (1 - self.p)) if self.training else x


class DropoutKeepingWithP(torch.nn.Module):     # p read as the probability to keep
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x * (torch.rand_like(x) < self.p) / (1 - self.p) if self.training else x


def mc_in_eval_mode(model, x, samples):        # dropout never switched on: every pass is the same network
    with torch.no_grad():
        return torch.stack([torch.softmax(model(x), 1) for _ in range(samples)]).mean(0)


def mc_mean_of_logits(model, x, samples):
    model.train()
    with torch.no_grad():
        out = torch.softmax(torch.stack([model(x) for _ in range(samples)]).mean(0), 1)
    model.eval()
    return out


def mc_left_in_training_mode(model, x, samples):
    model.train()
    with torch.no_grad():
        return torch.stack([torch.softmax(model(x), 1) for _ in range(samples)]).mean(0)


def mc_logits(model, x, samples):
    model.train()
    with torch.no_grad():
        out = torch.stack([model(x) for _ in range(samples)]).mean(0)
    model.eval()
    return out


def mc_one_repeated_batch_of_logits(model, x, samples):  # another order of the draws, and the logits averaged
    model.train()
    with torch.no_grad():
        out = torch.softmax(model(x.repeat(samples, 1, 1, 1)).view(samples, len(x), -1).mean(0), 1)
    model.eval()
    return out


WRONG.update({
    "check_hole_change": [
        (hole_counting_zeros, r"one survivor exactly at t\): 'refilled' is 0\.5, expected 0\.2 — you counted the pruned weights"),
        (hole_over_all_weights, r"'refilled' is 0\.125, expected 0\.2 — divide by the number of survivors"),
        (hole_edge_inside, r"'refilled' is 0\.4, expected 0\.2 — a survivor exactly at t is on the edge"),
        (hole_p99_with_zeros, r"'p99_growth' .* percentile over the survivors only"),
        (hole_threshold_after_retraining, r"'threshold' is 0\.4, expected 0\.5 — take t from pruned"),
    ],
    "check_dropout_module": [
        (DropoutScaledAtTest, r"DropoutScaledAtTest\(0\.5\) in training mode: survivors have value 1\.0000, expected 1/\(1-p\) = 2\.0000"),
        (DropoutMaskOnce, "a mask drawn once and kept is a pruning mask"),
        (DropoutAlsoInEval, r"in eval mode: the output differs from the input — \d+ entries are 0"),
        (DropoutInPlace, "changed its input in place"),
        (DropoutKeepingWithP, r"DropoutKeepingWithP\(0\.2\) in training mode: 8\d\.\d% of the entries are 0, expected about 20%"),
    ],
    "check_mc_dropout_average": [
        (mc_in_eval_mode, "dropout was off"),
        (mc_mean_of_logits, "you averaged the logits and took one softmax"),
        (mc_left_in_training_mode, "is not any more; restore every module's mode"),
        (mc_logits, r"the rows sum to .*, not 1"),
        (mc_one_repeated_batch_of_logits, r"differ from lecturelib's Monte-Carlo average by up to"),
    ],
})
def _prune_each(model, sparsity, *, biases=False, count=round, order=1):
    mask = {}
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith("weight") or biases:
                keep = torch.ones(weight.numel(), dtype=torch.bool)
                keep[(order * weight.abs().flatten()).argsort()[:count(sparsity * weight.numel())]] = False
                mask[name] = keep.view_as(weight)
                weight.mul_(mask[name])
    return mask


def prune_model_biases_too(model, sparsity):
    return _prune_each(model, sparsity, biases=True)


def prune_model_truncating(model, sparsity):
    return _prune_each(model, sparsity, count=int)


def prune_model_globally(model, sparsity):
    mask = pruning.global_magnitude_mask(model, sparsity)
    pruning.apply_mask(model, mask)
    return mask


def prune_model_mask_only(model, sparsity):     # the mask is right, the model keeps its weights
    return pruning.layerwise_magnitude_mask(model, sparsity)


def _finetune(model, mask, x, y, steps, lr, *, at_start=True, after_step=True, zero_grad=True, mask_before_step=False):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if at_start:
        pruning.apply_mask(model, mask)
    for _ in range(steps):
        if mask_before_step:
            pruning.apply_mask(model, mask)
        if zero_grad:
            optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if after_step:
            with torch.no_grad():
                pruning.apply_mask(model, mask)
    return model


def finetune_masking_once(model, mask, x, y, steps, lr):
    return _finetune(model, mask, x, y, steps, lr, after_step=False)


def finetune_masking_before_the_step(model, mask, x, y, steps, lr):   # the last step revives them
    return _finetune(model, mask, x, y, steps, lr, at_start=False, after_step=False, mask_before_step=True)


def finetune_dense_first_step(model, mask, x, y, steps, lr):          # the first forward pass still sees the dense weights
    return _finetune(model, mask, x, y, steps, lr, at_start=False)


def finetune_without_zero_grad(model, mask, x, y, steps, lr):
    return _finetune(model, mask, x, y, steps, lr, zero_grad=False)


def scan_in_place(model, x, y, sparsities):    # every entry prunes the model itself: the next ones start from pruned weights
    scan = {}
    for name in pruning.prunable_names(model):
        scan[name] = []
        for s in sparsities:
            pruning.apply_mask(model, pruning.layerwise_magnitude_mask(model, s, names=[name]))
            scan[name].append(finegrained.accuracy(model, x, y))
    return scan


def scan_all_layers(model, x, y, sparsities):  # the whole model pruned at each sparsity
    accs = []
    for s in sparsities:
        copy = training.clone_model(model)
        finegrained.prune_model(copy, s)
        accs.append(finegrained.accuracy(copy, x, y))
    return {name: list(accs) for name in pruning.prunable_names(model)}


def scan_in_percent(model, x, y, sparsities):
    return {name: [100 * a for a in accs] for name, accs in finegrained.sensitivity_scan(model, x, y, sparsities).items()}


def scan_largest_first(model, x, y, sparsities):
    scan = {}
    for name in pruning.prunable_names(model):
        scan[name] = []
        for s in sparsities:
            copy = training.clone_model(model)
            weight = dict(copy.named_parameters())[name]
            with torch.no_grad():
                weight.view(-1)[weight.abs().flatten().argsort(descending=True)[:round(s * weight.numel())]] = 0
            scan[name].append(finegrained.accuracy(copy, x, y))
    return scan


WRONG.update({
    "check_prune_model": [
        (prune_model_biases_too, r"extra \['fc1\.bias', 'fc2\.bias', 'fc3\.bias'\].*biases are few and stay dense"),
        (prune_model_truncating, r"'fc1\.weight': your mask prunes 21 of 72 weights, expected 22 .* int\(\) truncates"),
        (prune_model_globally, r"one threshold for the whole model"),
        (prune_model_mask_only, r"the mask is right but 22 pruned weights of the model are not 0"),
    ],
    "check_finetune_with_mask": [
        (finetune_masking_once, r"1 step at lr 0\.1: after fine-tuning \d+ pruned weights are non-zero .* after every optimizer\.step\(\)"),
        (finetune_masking_before_the_step, r"pruned weights are non-zero"),
        (finetune_dense_first_step, r"1 step at lr 0\.1: the surviving weights differ .* before the first forward pass"),
        (finetune_without_zero_grad, r"15 steps at lr 0\.1: the surviving weights differ .*zero_grad\(\) every step"),
    ],
    "check_sensitivity_scan": [
        (scan_in_place, "the model you were given changed"),
        (scan_all_layers, "you pruned every layer at once"),
        (scan_in_percent, "that is a percentage"),
        (scan_largest_first, r"'fc1\.weight' pruned to 0\.5: accuracy 0\.8, expected 0\.8167"),
    ],
})
LIBRARY.update({
    "check_prune_model": [finegrained.prune_model],
    "check_finetune_with_mask": [finegrained.finetune_with_mask],
    "check_sensitivity_scan": [finegrained.sensitivity_scan],
})
LIBRARY.update({
    "check_hole_change": [distributions.hole_change],
    "check_dropout_module": [torch.nn.Dropout],
    "check_mc_dropout_average": [lambda model, x, samples: dropout.mc_dropout_average(model, x, samples, seed=torch.initial_seed())],
})
LIBRARY.update({
    "check_prune_by_contribution": [data_importance.prune_by_contribution],
    "check_hidden_apoz": [data_importance.hidden_apoz],
})



# --- chapters 6-10: the algorithm exercises (lecturelib.reference) ---------------------------------

def curve_in_place(model, data, ratios):
    accs = []
    for ratio in ratios:
        pruning.apply_mask(model, pruning.global_magnitude_mask(model, ratio))
        accs.append(training.evaluate(model, data.x_test, data.y_test)[1])
    return accs


def curve_layerwise(model, data, ratios):
    nets = [pruning.apply_mask(training.clone_model(model), pruning.layerwise_magnitude_mask(model, r)) for r in ratios]
    return [training.evaluate(net, data.x_test, data.y_test)[1] for net in nets]


def curve_of_errors(model, data, ratios):
    return [1 - acc for acc in reference.pruned_accuracies(model, data, ratios)]


def curve_with_dense(model, data, ratios):
    return [training.evaluate(model, data.x_test, data.y_test)[1]] + reference.pruned_accuracies(model, data, ratios)


def curve_on_training_data(model, data, ratios):
    nets = [pruning.apply_mask(training.clone_model(model), pruning.global_magnitude_mask(model, r)) for r in ratios]
    return [training.evaluate(net, data.x_train, data.y_train)[1] for net in nets]


# --- check_remove_channels -----------------------------------------------------------------------

def _sliced(layer, rows=None, columns=None):
    new = copy.deepcopy(layer)
    weight = layer.weight.detach()
    if rows is not None:
        weight = weight[rows]
        if layer.bias is not None:
            new.bias = torch.nn.Parameter(layer.bias.detach()[rows].clone())
    if columns is not None:
        weight = weight[:, columns]
    new.weight = torch.nn.Parameter(weight.clone())
    return new


def channels_forgetting_the_next_layer(layer, next_layer, keep):
    return _sliced(layer, rows=keep), copy.deepcopy(next_layer)


def channels_zeroed(layer, next_layer, keep):
    new = copy.deepcopy(layer)
    with torch.no_grad():
        drop = [c for c in range(layer.weight.shape[0]) if c not in keep.tolist()]
        new.weight[drop] = 0
    return new, copy.deepcopy(next_layer)


def channels_next_outputs(layer, next_layer, keep):
    return _sliced(layer, rows=keep), _sliced(next_layer, rows=keep)


def channels_keeping_all_biases(layer, next_layer, keep):
    small = _sliced(layer, rows=keep)
    small.bias = copy.deepcopy(layer.bias)
    return small, _sliced(next_layer, columns=keep)


def channels_removed_instead_of_kept(layer, next_layer, keep):
    drop = torch.tensor([c for c in range(layer.weight.shape[0]) if c not in keep.tolist()])
    return _sliced(layer, rows=drop), _sliced(next_layer, columns=drop)


def channels_default_padding(layer, next_layer, keep):   # a new Conv2d from the sizes only: stride and padding lost
    if isinstance(layer, torch.nn.Conv2d):
        small = torch.nn.Conv2d(layer.in_channels, len(keep), layer.kernel_size, bias=layer.bias is not None)
        with torch.no_grad():
            small.weight.copy_(layer.weight[keep])
            if layer.bias is not None:
                small.bias.copy_(layer.bias[keep])
    else:
        small = _sliced(layer, rows=keep)
    return small, _sliced(next_layer, columns=keep)


def channels_in_place(layer, next_layer, keep):
    with torch.no_grad():
        layer.weight = torch.nn.Parameter(layer.weight[keep])
        if layer.bias is not None:
            layer.bias = torch.nn.Parameter(layer.bias[keep])
        next_layer.weight = torch.nn.Parameter(next_layer.weight[:, keep])
    return layer, next_layer


# --- check_iterative_prune -----------------------------------------------------------------------

def _prune_rounds(model, data, sparsities, steps, *, scope="global", mask_training=True, data_seeds=None):
    masks, mask = [], None
    make = pruning.global_magnitude_mask if scope == "global" else pruning.layerwise_magnitude_mask
    for r, s in enumerate(sparsities, start=1):
        mask = make(model, s, current_mask=mask)
        pruning.apply_mask(model, mask)
        training.train(model, data, iterations=steps, mask=mask if mask_training else None,
                       data_seed=r if data_seeds is None else data_seeds[r - 1])
        masks.append(mask)
    return masks


def loop_linear_schedule(model, data, final_sparsity, rounds, finetune_iterations):
    return _prune_rounds(model, data, [final_sparsity * r / rounds for r in range(1, rounds + 1)], finetune_iterations)


def loop_one_shot(model, data, final_sparsity, rounds, finetune_iterations):
    return _prune_rounds(model, data, [final_sparsity] * rounds, finetune_iterations)


def loop_without_the_mask(model, data, final_sparsity, rounds, finetune_iterations):
    return _prune_rounds(model, data, iterative.sparsity_schedule(final_sparsity, rounds), finetune_iterations, mask_training=False)


def loop_layerwise(model, data, final_sparsity, rounds, finetune_iterations):
    return _prune_rounds(model, data, iterative.sparsity_schedule(final_sparsity, rounds), finetune_iterations, scope="layerwise")


def loop_same_data_order(model, data, final_sparsity, rounds, finetune_iterations):
    return _prune_rounds(model, data, iterative.sparsity_schedule(final_sparsity, rounds), finetune_iterations, data_seeds=[0] * rounds)


def loop_with_dense_mask(model, data, final_sparsity, rounds, finetune_iterations):
    return [pruning.ones_mask(model)] + reference.iterative_prune(model, data, final_sparsity, rounds, finetune_iterations)


# --- check_find_ticket ---------------------------------------------------------------------------

def _imp(model, data, rounds, rate, iterations, *, sparsity=lambda rate, r: 1 - (1 - rate) ** r, reset="init", mask_training=True):
    w0 = copy.deepcopy(model.state_dict())
    training.train(model, data, iterations=iterations)
    masks, mask = [], None
    for r in range(1, rounds + 1):
        mask = pruning.layerwise_magnitude_mask(model, sparsity(rate, r), current_mask=mask)
        if reset == "init":
            model.load_state_dict(w0)
        elif reset == "fresh":
            model.load_state_dict(models.mlp((16,), 4, hidden=(16, 8), seed=1234).state_dict())
        training.train(model, data, iterations=iterations, mask=mask if mask_training else None)
        masks.append(mask)
    return masks


def imp_rate_of_all_weights(model, data, rounds, rate, iterations):
    return _imp(model, data, rounds, rate, iterations, sparsity=lambda rate, r: min(r * rate, 0.99))


def imp_fresh_init(model, data, rounds, rate, iterations):
    return _imp(model, data, rounds, rate, iterations, reset="fresh")


def imp_without_reset(model, data, rounds, rate, iterations):
    return _imp(model, data, rounds, rate, iterations, reset="none")


def imp_without_the_mask(model, data, rounds, rate, iterations):
    return _imp(model, data, rounds, rate, iterations, mask_training=False)


def imp_pruning_the_initial_weights(model, data, rounds, rate, iterations):
    masks, mask = [], None
    for r in range(1, rounds + 1):
        mask = pruning.layerwise_magnitude_mask(model, 1 - (1 - rate) ** r, current_mask=mask)   # before training
        training.train(model, data, iterations=iterations, mask=mask)
        masks.append(mask)
    return masks


def imp_global(model, data, rounds, rate, iterations):
    w0 = copy.deepcopy(model.state_dict())
    training.train(model, data, iterations=iterations)
    masks, mask = [], None
    for r in range(1, rounds + 1):
        mask = pruning.global_magnitude_mask(model, 1 - (1 - rate) ** r, current_mask=mask)
        model.load_state_dict(w0)
        training.train(model, data, iterations=iterations, mask=mask)
        masks.append(mask)
    return masks


# --- check_random_reinit -------------------------------------------------------------------------

def reinit_unmasked(make_model, mask, seed):
    return make_model(seed)


def reinit_ignoring_the_seed(make_model, mask, seed):
    return pruning.apply_mask(make_model(0), mask)


def reinit_standard_normal(make_model, mask, seed):
    model = make_model(seed)
    with torch.no_grad():
        for name, keep in mask.items():
            model.get_parameter(name).copy_(torch.randn(keep.shape) * keep)
    return model


def reinit_zeroed_biases(make_model, mask, seed):
    model = pruning.apply_mask(make_model(seed), mask)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    return model


def reinit_in_place(make_model, mask, seed):
    model = make_model(seed)
    for name, keep in mask.items():
        keep &= keep.clone()
        keep[0] = False
    return pruning.apply_mask(model, mask)


# --- check_error_barrier -------------------------------------------------------------------------

def _path_errors(model, state_a, state_b, data, alphas):
    return stability.path_metrics(model, state_a, state_b, data, alphas)[1]


def barrier_from_the_worse_end(model, state_a, state_b, data, alphas):
    e = _path_errors(model, state_a, state_b, data, alphas)
    return e.max() - max(e[0], e[-1]), e


def barrier_as_max_error(model, state_a, state_b, data, alphas):
    e = _path_errors(model, state_a, state_b, data, alphas)
    return e.max(), e


def barrier_max_minus_min(model, state_a, state_b, data, alphas):
    e = _path_errors(model, state_a, state_b, data, alphas)
    return e.max() - e.min(), e


def barrier_of_accuracies(model, state_a, state_b, data, alphas):
    e = 1 - _path_errors(model, state_a, state_b, data, alphas)
    return e.max() - (e[0] + e[-1]) / 2, e


def barrier_of_losses(model, state_a, state_b, data, alphas):
    e = stability.path_metrics(model, state_a, state_b, data, alphas)[2]
    return e.max() - (e[0] + e[-1]) / 2, e


def barrier_swapped_ends(model, state_a, state_b, data, alphas):
    e = _path_errors(model, state_b, state_a, data, alphas)
    return e.max() - (e[0] + e[-1]) / 2, e


WRONG_CHAPTERS_6_10 = {
    "check_pruned_accuracies": [
        (curve_in_place, "you pruned it in place"),
        (curve_layerwise, r"at ratio 0\.\d+ you returned .* you pruned each layer to the ratio separately"),
        (curve_of_errors, "that is the error 1 - accuracy"),
        (curve_with_dense, "do not include the unpruned accuracy"),
        (curve_on_training_data, "accuracy on the training split"),
    ],
    "check_remove_channels": [
        (channels_forgetting_the_next_layer, r"Conv2d\(3, 6, 3, padding=1\) → Conv2d\(6, 8, 3\), keep=\[0, 2, 3, 5\]: the next layer still expects 6 input channels"),
        (channels_zeroed, "Zeroing channels does not remove them"),
        (channels_next_outputs, r"you removed output channels of the next layer \(dim 0"),
        (channels_keeping_all_biases, r"bias has shape \(6,\), expected \(4,\)"),
        (channels_removed_instead_of_kept, r"you kept the channels \[1, 4\], the ones to remove"),
        (channels_default_padding, r"padding=1\).*output differs from the original's \(shape \(2, 8, 5, 5\), expected shape \(2, 8, 7, 7\)\) — keep the first layer's kernel size, stride and padding"),
        (channels_in_place, "you changed the layers you were given"),
    ],
    "check_iterative_prune": [
        (loop_linear_schedule, r"rounds=3.*after round 1 your mask prunes 29\.\d% of the weights, expected 50\.0% — the rounds prune equal fractions of ALL"),
        (loop_one_shot, "you pruned to the final sparsity at once"),
        (loop_without_the_mask, "fine-tuning without the mask lets pruned weights grow back"),
        (loop_layerwise, "prune globally, one magnitude threshold over all layers"),
        (loop_same_data_order, r"prunes other weights than lecturelib's .* data_seed=r"),
        (loop_with_dense_mask, "do not include the dense starting mask"),
    ],
    "check_find_ticket": [
        (imp_rate_of_all_weights, r"rounds=3, rate=0\.25.*after round 2, fc1\.weight has 128 of 256 weights pruned, expected 112 .* prune 25% of those still left"),
        (imp_fresh_init, "round 1's mask is right but round 2's is not — after pruning, reset the survivors to W_0"),
        (imp_without_reset, "round 1's mask is right but round 2's is not"),
        (imp_without_the_mask, "train every level with mask="),
        (imp_pruning_the_initial_weights, r"the mask of round 1 prunes other weights .* of the \*trained\* weights"),
        (imp_global, "layerwise"),
    ],
    "check_random_reinit": [
        (reinit_unmasked, "that the mask prunes are non-zero"),
        (reinit_ignoring_the_seed, r"those are make_model\(0\)'s"),
        (reinit_standard_normal, r"not make_model\(7\)'s initial values — the kept weights must be exactly"),
        (reinit_zeroed_biases, r"'fc1\.bias' is not in the mask"),
        (reinit_in_place, "you changed the mask in place"),
    ],
    "check_error_barrier": [
        (barrier_from_the_worse_end, "you subtracted the larger end error"),
        (barrier_as_max_error, "that is the highest error itself"),
        (barrier_max_minus_min, "max - min over the path"),
        (barrier_of_accuracies, "those are accuracies"),
        (barrier_of_losses, "those are the losses"),
        (barrier_swapped_ends, "alpha = 0 must give state_a"),
    ],
}
WRONG.update(WRONG_CHAPTERS_6_10)
LIBRARY.update({
    "check_pruned_accuracies": [reference.pruned_accuracies],
    "check_remove_channels": [reference.remove_channels],
    "check_iterative_prune": [reference.iterative_prune],
    "check_find_ticket": [reference.find_ticket],
    "check_random_reinit": [reference.random_reinit],
    "check_error_barrier": [stability.error_barrier],
})

# checks that take a number, not a function: tested on their own below
NOT_FUNCTION_CHECKS = {"check_prediction"}
FUNCTION_CHECKS = [name for name in CHECKS if name not in NOT_FUNCTION_CHECKS]


def test_every_check_is_tested_against_three_wrong_answers():
    assert set(WRONG) == set(FUNCTION_CHECKS), "every lecturelib.checks.check_* needs realistic wrong answers in WRONG"
    assert all(len(wrong) >= 3 for wrong in WRONG.values())


@pytest.mark.parametrize("check, wrong, message", [
    pytest.param(check, wrong, message, id=f"{check}-{wrong.__name__}") for check, cases in WRONG.items() for wrong, message in cases
])
def test_wrong_answers_fail_with_a_message_saying_what_differs(check, wrong, message):
    with pytest.raises(checks.CheckFailed, match=message) as failure:
        getattr(checks, check)(wrong)
    assert not isinstance(failure.value, checks.NotAttempted)
    assert "\n" not in str(failure.value), "one line: the grader prints it in a table"


# --- the right answers: the notebooks' solution cells and lecturelib's implementations -----------

def _trees(cells) -> dict[int, ast.Module]:
    """{index: syntax tree} of the code cells that parse as Python (a cell with only ``%pip`` under an ``if`` does not)."""
    trees = {}
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            try:
                trees[i] = student_edition._parse(cell.source)
            except SyntaxError:
                pass
    return trees


def _solutions() -> dict[str, list[tuple[str, str, str]]]:
    """{check name: [(where, the notebook's imports + the solution cell defining the function it is called with, its name)]}."""
    found: dict[str, list] = {}
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        trees = _trees(cells)
        imports = [ast.unparse(node) for tree in trees.values() for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        for i, tree in trees.items():
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("check_")
                        and node.args and isinstance(node.args[0], ast.Name)):
                    name = node.args[0].id
                    defining = [cells[j].source for j in sorted(trees) if j < i and student_edition.is_solution_cell(cells[j])
                                and any(isinstance(d, (ast.FunctionDef, ast.ClassDef)) and d.name == name for d in trees[j].body)]
                    found.setdefault(node.func.attr, []).append((f"{path.name}: {name}", "\n".join(imports + defining[-1:]), name))
    return found


@pytest.mark.parametrize("check", FUNCTION_CHECKS)
def test_each_check_passes_the_notebook_solution_and_the_library(check, capsys):
    answers = []
    for where, source, name in _solutions().get(check, []):
        namespace: dict = {}
        exec(compile(source, where, "exec"), namespace)   # the solution cell, with the notebook's imports
        assert name in namespace, f"{where}: no solution cell defines {name}"
        answers.append(namespace[name])
    answers += LIBRARY.get(check, [])
    assert answers, f"{check}: no notebook calls it with a solution and lecturelib has no implementation to pass it"
    for answer in answers:
        getattr(checks, check)(answer)
    assert capsys.readouterr().out.count("✓") == len(answers)


@pytest.mark.parametrize("check", FUNCTION_CHECKS)
def test_a_stub_is_reported_as_not_attempted(check, capsys):
    """The student edition's stub: one printed line, no exception (the chapter runs on), outcome 'not attempted'."""
    def stub(*args):
        raise NotImplementedError

    checks.report_outcomes()
    capsys.readouterr()
    assert getattr(checks, check)(stub) is None
    out = capsys.readouterr().out
    assert out.startswith("○ not attempted: stub is not implemented yet") and out.count("\n") == 1
    checks.report_outcomes()
    assert '"status": "not attempted"' in capsys.readouterr().out


def test_every_check_records_its_outcome_for_the_grader(capsys):
    """The grader reads these outcomes, so a notebook that catches CheckFailed is still graded by the check's verdict."""
    assert all(hasattr(getattr(checks, name), "__wrapped__") for name in CHECKS), "decorate every check_* with @_recorded"
    checks.report_outcomes()   # forget what earlier tests recorded
    capsys.readouterr()
    checks.check_sparsity_schedule(iterative.sparsity_schedule)
    with pytest.raises(checks.CheckFailed):
        checks.check_sparsity_schedule(schedule_linear)
    checks.check_prune_smallest(lambda w, sparsity: (_ for _ in ()).throw(NotImplementedError))   # prints, does not raise
    capsys.readouterr()
    checks.report_outcomes()
    line = capsys.readouterr().out.strip()
    assert line.startswith(checks.GRADER_MARK)
    outcomes = json.loads(line[len(checks.GRADER_MARK):])
    assert [(o["check"], o["status"]) for o in outcomes] == [
        ("check_sparsity_schedule", "passed"), ("check_sparsity_schedule", "failed"), ("check_prune_smallest", "not attempted")]
    assert "linear schedule" in outcomes[1]["message"]
    checks.report_outcomes()
    assert capsys.readouterr().out.strip() == checks.GRADER_MARK + "[]", "reported outcomes are forgotten"


# --- skipped exercises and predictions --------------------------------------------------------------

def test_use_or_fallback_uses_the_students_function_or_the_reference_with_one_note(capsys):
    def stub(w, sparsity):
        raise NotImplementedError

    def mine(w, sparsity):
        return w * 0

    chosen = checks.use_or_fallback(stub, pruning_reference)
    w = torch.tensor([3.0, -1.0, 2.0, 0.5])
    assert torch.equal(chosen(w, 0.5), pruning_reference(w, 0.5))
    assert torch.equal(chosen(w, 0.25), pruning_reference(w, 0.25))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "stub is not implemented yet" in out and "pruning_reference" in out
    assert torch.equal(checks.use_or_fallback(mine, pruning_reference)(w, 0.5), w * 0), "a written function is used as it is"
    assert capsys.readouterr().out == ""

    class Stubbed(torch.nn.Module):
        def __init__(self, p):
            raise NotImplementedError

    layer = checks.use_or_fallback(Stubbed, torch.nn.Dropout)(0.3)
    assert isinstance(layer, torch.nn.Dropout) and layer.p == 0.3
    assert "Stubbed is not implemented yet: this chapter uses the reference torch.nn.Dropout instead." in capsys.readouterr().out
    with pytest.raises(TypeError, match="reference must be a function or class, got 3"):
        checks.use_or_fallback(stub, 3)


def pruning_reference(w, sparsity):
    out = w.clone()
    out[w.abs().argsort()[:round(sparsity * len(w))]] = 0
    return out


@pytest.mark.parametrize("prediction, message", [
    (0.5, r"weights left: you predicted 0\.5, the run gave 0\.3277 — off by \+0\.172, more than the tolerance ±0\.02"),
    (32.77, r"that is a percentage; give a fraction"),                  # a percentage for a fraction
    (0.8 ** 4, r"off by \+0\.0819"),                                     # off by one round
    ("0.33", r"should be a number, got '0\.33' of type str"),          # a string
    (float("nan"), r"should be a number, got nan"),
], ids=["far-off", "percentage", "off-by-one-round", "string", "nan"])
def test_a_wrong_prediction_fails_with_how_far_off_it_is(prediction, message):
    with pytest.raises(checks.CheckFailed, match=message) as failure:
        checks.check_prediction(prediction, 0.8 ** 5, tolerance=0.02, what="weights left")
    assert not isinstance(failure.value, checks.NotAttempted) and "\n" not in str(failure.value)


def test_a_prediction_check_refuses_a_bad_measurement_or_tolerance():
    with pytest.raises(ValueError, match="tolerance must be a non-negative number, got -0.1"):
        checks.check_prediction(0.3, 0.3, tolerance=-0.1, what="x")
    with pytest.raises(ValueError, match="measured must be a number, got None"):
        checks.check_prediction(0.3, None, tolerance=0.1, what="x")


def test_a_prediction_within_the_tolerance_passes_and_none_is_not_attempted(capsys):
    checks.check_prediction(0.33, 0.8 ** 5, tolerance=0.02, what="weights left")
    assert capsys.readouterr().out.startswith("✓ weights left: you predicted 0.33")
    checks.report_outcomes()
    capsys.readouterr()
    assert checks.check_prediction(None, 0.8 ** 5, tolerance=0.02, what="weights left") is None
    assert "not attempted: no prediction yet for weights left" in capsys.readouterr().out
    checks.report_outcomes()
    assert '"status": "not attempted"' in capsys.readouterr().out
