"""The book's performance page, rendered from the benchmark results JSON (``book/performance.md``).

:func:`render_page` is a pure function of the results dict, so the page always shows exactly
what ``benchmarks/results.json`` holds; a section missing from the JSON is shown as not measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lecturelib import atomic

from . import PAGE_PATH

SECTIONS = ("masked_training", "imp_cost", "train_many", "structured_latency", "sparse_linear", "notebook_runtime")


def verdict(met: bool | None) -> str:
    """Return ``"met"``, ``"**missed**"`` or ``"not decided"`` (``None``: the figure is incomplete)."""
    return "not decided" if met is None else ("met" if met else "**missed**")


def ms(seconds: float) -> str:
    """Return seconds as milliseconds with 3 significant digits, e.g. ``"12.3 ms"``."""
    value = seconds * 1e3
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def ratio(entry: Mapping) -> str:
    """Return a paired-ratio record as ``"1.03 (IQR 0.99–1.05)"``."""
    return f"{entry['median']:.2f} (IQR {entry['q1']:.2f}–{entry['q3']:.2f})"


def percent(fraction: float | None) -> str:
    """Return a fraction as a percentage with up to 1 decimal (``None``: ``"—"``)."""
    return "—" if fraction is None else f"{fraction * 100:.3g} %"


def threads(n: int) -> str:
    """Return ``"1 PyTorch thread"`` or ``"n PyTorch threads"``."""
    return f"{n} PyTorch thread{'' if n == 1 else 's'}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_rows(results: Mapping) -> list[list[str]]:
    """Return the rows ``[figure, measured, target, verdict]`` of the page's overview table."""
    rows = []
    mt = results.get("masked_training")
    if mt:
        for name, model in mt["models"].items():
            rows.append([f"Masked ÷ dense training, {name}", f"{model['ratios']['masked_vs_dense']['median']:.2f}",
                         f"≤ {mt['targets']['masked_vs_dense']:.2f}", verdict(model["met"]["masked_vs_dense"])])
            rows.append([f"Masked ÷ `torch.nn.utils.prune` training, {name}",
                         f"{model['ratios']['masked_vs_torch_prune']['median']:.2f}",
                         f"≤ {mt['targets']['masked_vs_torch_prune']:.2f}", verdict(model["met"]["masked_vs_torch_prune"])])
    imp = results.get("imp_cost")
    if imp:
        rows.append([f"IMP, {imp['settings']['rounds']} rounds ÷ {imp['settings']['trainings']} dense trainings",
                     f"{imp['ratio']['median']:.2f}", f"≤ {imp['target']:.2f}", verdict(imp["met"])])
    tm = results.get("train_many")
    if tm and (row := _target_row(tm)):   # the target case; the section's table has every (model, N, threads)
        rows.append([f"{row['n']} {row['model'].upper()}s one by one ÷ together (`train_many`), {threads(row['threads'])}",
                     _target_speedup(tm), f"≥ {tm['target']['speedup']:.1f}×", verdict(tm["met"])])
    sl = results.get("structured_latency")
    if sl:
        for net in sl["networks"]:
            for row in net["pruned"]:
                rows.append([f"Channel pruning {percent(row['fraction_removed'])}, {net['name']}: speed-up ÷ FLOP reduction",
                             f"{row['efficiency']:.2f}", f"≥ {sl['target_efficiency']:.2f}", verdict(row["met"])])
    sp = results.get("sparse_linear")
    if sp:
        for b in sp["batches"]:
            rows.append([f"CSR vs dense {sp['settings']['shape'][0]}², batch {b['batch']}: break-even sparsity",
                         percent(b["break_even_sparsity"]) if b["break_even_sparsity"] is not None
                         else f"> {percent(b['max_sparsity'])}", "reported", "—"])
            rows.append([f"CSR vs dense {sp['settings']['shape'][0]}², batch {b['batch']}: speed-up at {percent(b['max_sparsity'])}",
                         f"{b['speedup_at_max_sparsity']:.2f}×", "reported", "—"])
    nb = results.get("notebook_runtime")
    if nb:
        measured = f"{nb['total_seconds']:.0f} s over {nb['executed']} notebooks"
        if nb["missing"]:
            measured += f" ({len(nb['missing'])} missing)"
        if nb["failed"]:
            measured += f" ({len(nb['failed'])} failed)"
        rows.append(["Course runtime, all notebooks", measured, f"≤ {nb['target_total_seconds']:.0f} s", verdict(nb["met"])])
    st = results.get("setup_time")
    if st:
        rows.append(["Set-up of a fresh clone: pip ÷ uv time to create `.venv`", f"{st['env_speedup']['median']:.1f}×",
                     f"≥ {st['target_env_speedup']:.0f}×", verdict(st["met"])])
    return rows


def _machine(results: Mapping) -> list[str]:
    m = results.get("machine", {})
    load = results.get("load_average", {})
    lines = [
        f"Measured on **{m.get('machine_class', 'an unknown machine')}** ({m.get('cpu_model', 'unknown CPU')}, "
        f"{m.get('cores', '?')} usable cores, torch {m.get('torch', '?')}, Python {m.get('python', '?')}, {m.get('os', '?')})"
        f" on {results.get('date', 'an unknown date')}; the whole run took {results.get('wall_seconds', 0) / 60:.1f} min."
    ]
    if load:
        lines[0] += (f" The 1-minute load average was {load.get('start', float('nan')):.2f} at the start and "
                     f"{load.get('end', float('nan')):.2f} at the end (background work inflates absolute times; "
                     "the ratios below are measured in interleaved rounds to cancel it).")
    return lines


def _masked_training(mt: Mapping) -> list[str]:
    s = mt["settings"]
    lines = ["## Masked training", "",
             f"The same initial network trained on the same {s['dataset']} minibatches (batch {s['batch_size']}, "
             f"{s['optimizer']}) three ways: dense, with lecturelib's {{term}}`mask` ({percent(s['sparsity'])} "
             "global magnitude sparsity, gradients masked and weights re-zeroed after each step), and with the mask "
             "attached by `torch.nn.utils.prune.custom_from_mask` (the `weight_orig * weight_mask` "
             f"reparametrisation) in a plain loop of the same shape. {s['epochs_per_run']} epochs per run, "
             f"{s['warmup']} warm-up and {s['repeats']} timed rounds in the order {s['order']}; "
             f"{threads(s['torch_threads'])}. Ratios are medians of the per-round ratios.", ""]
    rows = []
    for name, model in mt["models"].items():
        t = model["seconds_per_epoch"]
        r = model["ratios"]
        rows.append([name, ms(t["dense"]["median"]), ms(t["masked"]["median"]), ms(t["torch_prune"]["median"]),
                     ratio(r["masked_vs_dense"]), ratio(r["masked_vs_torch_prune"]), ratio(r["torch_prune_vs_dense"]),
                     ratio(r["masked_vs_dense_sgd"])])
    lines += _table(["model", "dense / epoch", "masked / epoch", "torch prune / epoch", "masked ÷ dense",
                     "masked ÷ torch prune", "torch prune ÷ dense", "masked ÷ dense, SGD"], rows)
    lines += ["", f"Targets: masked ÷ dense ≤ {mt['targets']['masked_vs_dense']:.2f}; masked ÷ torch prune ≤ "
              f"{mt['targets']['masked_vs_torch_prune']:.2f} (no slower).", ""]
    sgd, sqrt = mt["settings"]["sgd"], mt["sqrt_zero_vs_positive"]
    lines += [f"The last column repeats the masked and dense runs with SGD (learning rate {sgd['lr']}, momentum "
              f"{sgd['momentum']}) instead of Adam: the cost of the mask itself (two multiplies per step). lecturelib's "
              "Adam is PyTorch's fused kernel (`training.make_optimizer`). The unfused one takes `sqrt` of every second "
              "moment in a separate pass, and a pruned weight's second moment (or that of a weight into a dead ReLU unit) "
              f"is exactly zero: on this machine `sqrt` of exact zeros takes {sqrt['median']:.1f}× the time of `sqrt` "
              "of positive numbers (measured in the same run), which makes unfused Adam slower on a sparse network than "
              "on a dense one.", ""]
    return lines


def _imp_cost(imp: Mapping) -> list[str]:
    s = imp["settings"]
    return ["## The cost of iterative magnitude pruning", "",
            f"{{term}}`Iterative magnitude pruning <iterative magnitude pruning>` with {s['rounds']} rounds trains {s['trainings']} networks "
            f"({s['model']} on {s['dataset']}, {s['iterations']} iterations each, evaluated every {s['eval_every']}). "
            f"Its wall time is divided by the time of {s['trainings']} dense trainings of the same length, "
            f"alternating with it in {s['repeats']} timed rounds after {s['warmup']} warm-up ({threads(s['torch_threads'])}).", "",
            *_table(["IMP run", f"{s['trainings']} dense trainings", "one dense training", "IMP ÷ dense trainings",
                     "extra per round", "target"],
                    [[f"{imp['imp_seconds']['median']:.2f} s", f"{imp['dense_trainings_seconds']['median']:.2f} s",
                      f"{imp['one_dense_training_seconds']['median']:.3f} s", ratio(imp["ratio"]),
                      ms(imp["extra_seconds_per_round"]["median"]), f"≤ {imp['target']:.2f}: {verdict(imp['met'])}"]]),
            ""]


TRAIN_MANY_SNIPPET = """\
import torch

N, B, n_in, n_out = 6, 60, 64, 300          # 6 networks, a minibatch of 60 each
W = torch.randn(N, n_out, n_in)              # layer fc1 of every network, stacked
b = torch.randn(N, n_out)
x = torch.randn(N, B, n_in)                  # each network's own minibatch

one_by_one = torch.stack([x[i] @ W[i].T + b[i] for i in range(N)])   # N small products
together = torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))       # one batched product
assert torch.allclose(one_by_one, together, atol=1e-4)
columns = torch.baddbmm(b.unsqueeze(2), W, x.transpose(1, 2))         # the same, as columns (N, n_out, B)
assert torch.allclose(together, columns.transpose(1, 2), atol=1e-4)
"""


def _train_many(tm: Mapping) -> list[str]:
    s, t = tm["settings"], tm["target"]
    lines = ["## Training many networks at once", "",
             "The lottery-ticket chapters train many small networks of one architecture — seeds, random re-initialisations, "
             "the two copies of a stability test. One such network leaves a CPU core mostly waiting on Python and on launching "
             "small kernels. Stacking the weights of N networks into one tensor of shape `(N, out, in)` turns N small "
             "matrix products into one batched product, which PyTorch computes in one call:", "",
             "```python", *TRAIN_MANY_SNIPPET.rstrip("\n").splitlines(), "```", "",
             "The backward pass gives each network the gradient of its own loss (the losses are summed, and no weight is "
             "shared), and Adam or SGD update every weight on its own, so one optimiser over the stacked tensors takes N "
             "independent steps; a mask is stacked the same way. Between linear layers `train_many` keeps the activations "
             "as columns, the last form above: it multiplies each `W` as stored, so neither the product nor its gradient "
             "copies a transposed weight. `lecturelib.training.train_many(models, data, masks=…, "
             "data_seeds=…)` does this for the course's networks and ends where N calls of `train` end, to float "
             "rounding. A 1-D convolution becomes one batched product too: the `kernel` strided slices of the padded input "
             "are stacked into columns of shape `(N, C·kernel, B·L_out)`, multiplied by the weights `(N, out, C·kernel)`; a "
             "2-D convolution becomes one grouped convolution (unfolding its 3×3 windows copies each activation nine "
             "times, which was slower here). The experiment runner uses it wherever a 1-D or no convolution is involved: "
             "IMP across seeds, the random re-initialisations of every seed and pruning level (one call), and the copies "
             "of the stability tests (every seed of one rewind point together). Below, N masked networks "
             f"({percent(s['sparsity'])} global magnitude sparsity; {s['optimizer']}, learning rate {s['lr']}, batch "
             f"{s['batch_size']}; {', '.join(f'{m.upper()} on {d}' for m, d in s['datasets'].items())}) trained one after "
             "another with `train` are timed against the same N in "
             f"one `train_many`, in {s['repeats']} interleaved rounds after {s['warmup']} warm-up. The step count is set "
             f"so that one `train_many` takes at least {s['min_seconds']} s. Speed-up = one by one ÷ together, the median "
             "of the per-round ratios.", ""]
    rows = [[row["model"], str(row["n"]), str(row["threads"]), str(row["iterations"]),
             f"{row['sequential_seconds']['median']:.2f} s", f"{row['together_seconds']['median']:.2f} s", ratio(row["speedup"])]
            for row in tm["rows"]]
    lines += _table(["model", "N", "threads", "steps", "one by one", "together", "speed-up"], rows)
    spread = tm.get("target_speedup_by_process")
    lines += ["", f"Target: at least {t['speedup']:.1f}× for {t['n']} {t['model'].upper()}s on {threads(t['threads'])}: "
              + (f"{_target_speedup(tm)}, the median of {len(spread)} fresh processes (the one-by-one side's "
                 "2-thread timing of these tiny steps depends on the process more than on the round; range in brackets): "
                 if spread and _target_row(tm) else "") + f"{verdict(tm['met'])}.", ""]
    return lines


def _target_row(tm: Mapping) -> Mapping | None:
    """The table's row of the train_many target case, or ``None`` when the run did not time it."""
    t = tm["target"]
    return next((row for row in tm["rows"] if (row["model"], row["n"], row["threads"]) == (t["model"], t["n"], t["threads"])), None)


def _target_speedup(tm: Mapping) -> str:
    """The target case's speed-up: the median process with the range over processes, or the one run's median."""
    spread = tm.get("target_speedup_by_process")
    if not spread:
        return f"{_target_row(tm)['speedup']['median']:.2f}×"
    return _with_range(f"{tm['target_speedup']:.2f}×", spread)


def _with_range(value: str, spread: Sequence[float] | None) -> str:
    """``value``, then the range over the fresh processes in brackets where the run measured several."""
    return value + (f" ({min(spread):.2f}–{max(spread):.2f})" if spread else "")


def _structured(sl: Mapping) -> list[str]:
    s = sl["settings"]
    lines = ["## Structured pruning: channels removed for real", "",
             "{term}`Structured pruning <structured pruning>` removes whole convolution channels, so the network becomes a smaller "
             f"dense one. Here the same fraction of the lowest-L1 filters of every convolution is removed and the "
             f"smaller network is rebuilt; latency is measured at batch {s['batch']} ({s['warmup']} warm-up, "
             f"{s['repeats']} interleaved rounds, {threads(s['torch_threads'])}). Speed-up = dense ÷ pruned latency; "
             "FLOP reduction = dense ÷ pruned multiply-accumulates; efficiency = speed-up ÷ FLOP reduction "
             f"(target ≥ {sl['target_efficiency']:.2f})."
             + (f" Each network is timed in {s['processes']} fresh processes (a process's memory layout and kernels move "
                "these timings more than its rounds do); each row is the process with the median efficiency, the "
                "range over the processes in brackets." if s.get("processes", 1) > 1 else ""), ""]
    for net in sl["networks"]:
        lines += [f"### {net['name']}", "",
                  f"Input {'×'.join(map(str, net['input_shape']))}, convolutions {net['channels']}, "
                  f"{net['macs_per_image']:,} MACs per image; dense latency {ms(net['dense_latency_seconds']['median'])} "
                  f"per batch.", ""]
        rows = [[percent(r["fraction_removed"]), str(r["conv_widths"]), f"{r['mac_ratio']:.2f}", ms(r["latency_seconds"]["median"]),
                 ratio(r["latency_ratio"]), f"{r['speedup']:.2f}×", f"{r['flop_reduction']:.2f}×",
                 _with_range(f"{r['efficiency']:.2f}", r.get("efficiency_by_process")),
                 verdict(r["met"])] for r in net["pruned"]]
        lines += _table(["channels removed", "widths", "MAC ratio", "latency", "latency ratio", "speed-up",
                         "FLOP reduction", "efficiency", "target"], rows)
        lines.append("")
    return lines


def _sparse(sp: Mapping) -> list[str]:
    s = sp["settings"]
    n = s["shape"][0]
    lines = ["## Unstructured sparsity on a CPU", "",
             f"A {n}×{n} linear layer ({s['dtype']}) dense and stored as {s['sparse_format']} after "
             "{term}`unstructured pruning` of its smallest weights. The dense layer does the same work at any "
             "{term}`sparsity`; the CSR product touches only the non-zeros but pays for indices and irregular "
             f"memory access {{cite:p}}`hoefler2021sparsity`. {s['warmup']} warm-up and {s['repeats']} interleaved rounds, "
             f"{threads(s['torch_threads'])}; ratios are CSR ÷ dense latency (below 1: CSR is faster).", ""]
    for b in sp["batches"]:
        be = b["break_even_sparsity"]
        be_text = (f"break-even at ≈ {percent(be)} sparsity" if be is not None
                   else f"CSR never reached the dense speed up to {percent(b['max_sparsity'])} sparsity")
        lines += [f"### Batch {b['batch']}", "",
                  f"Dense latency {ms(b['dense_latency_seconds']['median'])}; {be_text}; speed-up at "
                  f"{percent(b['max_sparsity'])}: {b['speedup_at_max_sparsity']:.2f}×.", ""]
        rows = [[percent(r["sparsity"]), ms(r["csr_latency_seconds"]["median"]), ratio(r["csr_vs_dense"]), f"{r['speedup']:.2f}×"]
                for r in b["csr"]]
        lines += _table(["sparsity", "CSR latency", "CSR ÷ dense", "speed-up"], rows)
        lines.append("")
    return lines


def _notebooks(nb: Mapping) -> list[str]:
    lines = ["## Course runtime", "",
             "Each chapter notebook executed once, from a copy, in a fresh kernel with an empty experiment cache "
             f"({nb['settings']['profile']}); times include the kernel's start. Every operation runs on one PyTorch "
             "thread; independent trainings (seeds, rewind points, controls) run side by side on the cores "
             "(`lecturelib.machine.side_by_side`), which changes no result. Target: the whole course in "
             f"≤ {nb['target_total_seconds']:.0f} s.", ""]
    rows = []
    for r in nb["notebooks"]:
        status = f"{r['status']} ({r['error']})" if r.get("error") else r["status"]
        rows.append([f"`{r['notebook']}`", "—" if r["seconds"] is None else f"{r['seconds']:.1f} s", status.replace("|", "/")])
    rows.append(["**total**", f"**{nb['total_seconds']:.1f} s**", f"{nb['executed']} executed"])
    lines += _table(["notebook", "seconds", "status"], rows)
    lines.append("")
    if not nb["complete"]:
        parts = []
        if nb["missing"]:
            parts.append(f"missing: {', '.join(nb['missing'])}")
        if nb["failed"]:
            parts.append(f"failed: {', '.join(nb['failed'])}")
        lines += [f"The total is incomplete ({'; '.join(parts)}), so the target is not decided.", ""]
    return lines


def _setup_time(st: Mapping) -> list[str]:
    s, m = st["settings"], st["machine"]
    paths = {"pip": "pip, `requirements-lock.txt`", "uv": "uv, `uv.lock`"}
    header, rows = ["path", "`make env`"], {p: [paths[p], f"{st['env_seconds'][p]['median']:.0f} s"] for p in paths}
    ratios = ["pip ÷ uv", ratio(st["env_speedup"])]
    if s["book"]:
        header += ["`make book`", "total"]
        for p in paths:
            rows[p] += [f"{st['book_seconds'][p]['median']:.0f} s", f"{st['total_seconds'][p]['median']:.0f} s"]
        ratios += ["—", ratio(st["total_speedup"])]
    load = st.get("load_average")
    lines = ["## Set-up time of a fresh clone", "",
             "`make env` (creating `.venv`) and then `make book` in a fresh clone, with empty pip and uv caches and no uv "
             "installed, as on a clean CI machine: the last commit with `requirements-lock.txt` "
             f"(`{s['commits']['pip'][:7]}`: `python3.11 -m venv` and `pip install -r requirements-lock.txt`) against "
             f"`{s['commits']['uv'][:7]}` (pip installs the locked uv into a temporary folder, then `uv sync --frozen` "
             f"creates `.venv` from `uv.lock`). {s['repeats']} rounds alternating pip and uv; times are medians and the ratios medians of the "
             f"per-round pip ÷ uv ratios. Measured on {m['machine_class']} ({m['cpu_model']}) on {st['date']}"
             + (f", load average {load['start']:.1f} → {load['end']:.1f}." if load else "."), "",
             *_table(header, [rows["pip"], rows["uv"], ratios]), "",
             f"Target: `.venv` at least {st['target_env_speedup']:.0f}× faster with uv: {verdict(st['met'])}. "
             "uv does not compile bytecode while installing (pip does), so part of its gain is paid back at the first "
             "imports; the total includes them."]
    local = next((r["local_wheels"] for r in st["rounds"] if r["path"] == "pip"), [])
    if local:
        lines[-1] += (f" On this machine pip's configuration ({s['pip_config'] or 'environment'}) points it at local copies: "
                      f"it read {len(local)} of the {s['pip_pins']} wheels of `requirements-lock.txt` from the disk"
                      + (", PyTorch's among them" if "torch" in local else "")
                      + ", so the pip path downloads less here than it would elsewhere; uv downloads everything from PyPI.")
    lines += ["", "`make bench` does not rerun this figure (it takes several minutes per round) and keeps the last one; "
              "`python -m benchmarks.setup_time` reruns it.", ""]
    return lines


def render_page(results: Mapping) -> str:
    """Return the Markdown (MyST) text of the performance page for ``results`` (the benchmarks' JSON as a dict)."""
    lines = ["# Performance", "",
             "<!-- Generated by `make bench` (python -m benchmarks) from benchmarks/results.json; do not edit by hand. -->", "",
             "A course that claims speed as a gain of pruning has to measure it, and a course run by many students "
             "has to be fast on a laptop. Every figure below is a **ratio of two timings measured side by side in one "
             "run** — medians over repeated, interleaved rounds after a warm-up — so it says more about another "
             "machine than an absolute time would. Absolute times are given for scale only.", "",
             *_machine(results), ""]
    rows = summary_rows(results)
    if rows:
        lines += ["## Overview", "", *_table(["figure", "measured", "target", "verdict"], rows), ""]
    renderers = {"masked_training": _masked_training, "imp_cost": _imp_cost, "train_many": _train_many, "structured_latency": _structured,
                 "sparse_linear": _sparse, "notebook_runtime": _notebooks}
    missing = []
    for key in SECTIONS:
        if results.get(key):
            lines += renderers[key](results[key])
        else:
            missing.append(key)
    if results.get("setup_time"):  # measured separately (benchmarks/setup_time.py), with its own date
        lines += _setup_time(results["setup_time"])
    notes = results.get("notes") or []
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    if missing:
        lines += [f"Not measured in this run: {', '.join(missing)}.", ""]
    lines += ["To measure on your machine, run `make bench` in the repository: it rewrites "
              "`benchmarks/results.json` and this page (it must finish within 10 minutes on 2 cores)."]
    return "\n".join(lines).rstrip() + "\n"


def write_page(results: Mapping, path: str | os.PathLike = PAGE_PATH) -> Path:
    """Render ``results`` with :func:`render_page`, write the page to ``path`` and return the path."""
    path = Path(path)
    atomic.write_text(path, render_page(results))
    return path
