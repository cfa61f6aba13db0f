"""Run the course's benchmarks and write ``benchmarks/results.json`` and ``book/performance.md``.

    python -m benchmarks                       # everything (make bench), about 10 minutes on 2 cores
    python -m benchmarks --only sparse_linear  # one figure; the other sections are kept from the last JSON
    python -m benchmarks --render-only         # rewrite the page from the existing JSON
    python -m benchmarks --quick               # tiny sizes, a smoke test of the whole pipeline (numbers meaningless)
    python -m benchmarks.setup_time            # the set-up time of a fresh clone, pip vs uv (slow; not run above)

Run from the repository root (``python -m`` puts it on ``sys.path``, so lecturelib is the checkout's;
the notebook kernels get ``PYTHONPATH`` set to the root by :mod:`benchmarks.notebook_runtime`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
import warnings

from . import PAGE_PATH, RESULTS_PATH, SCHEMA_VERSION, load_average, machine_info, read_results, write_results
from . import imp_cost, masked_training, notebook_runtime, page, setup_time, sparse_linear, structured_latency, train_many

QUICK = {
    "masked_training": lambda: masked_training.run(("mlp",), epochs=1, warmup=0, repeats=2),
    "imp_cost": lambda: imp_cost.run(rounds=1, iterations=20, eval_every=10, warmup=0, repeats=2),
    "train_many": lambda: train_many.run(("mlp",), (2,), (1,), min_seconds=0.01, warmup=0, repeats=2),
    "structured_latency": lambda: structured_latency.run(structured_latency.DEFAULT_NETWORKS[:1], batch=16, warmup=1, repeats=3),
    "sparse_linear": lambda: sparse_linear.run(size=256, batches=(1,), warmup=1, repeats=3),
    "notebook_runtime": lambda: notebook_runtime.run(notebook_runtime.chapters_from_toc()[:1]),
}
FULL = {
    "masked_training": lambda: masked_training.run(),
    "imp_cost": lambda: imp_cost.run(),
    "train_many": lambda: train_many.run(target_processes=5),
    "structured_latency": lambda: structured_latency.run(processes=5),
    "sparse_linear": lambda: sparse_linear.run(),
    "notebook_runtime": lambda: notebook_runtime.run(),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=page.SECTIONS, help="run only these figures")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test; do not commit its numbers)")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the page from the results JSON")
    parser.add_argument("--results", default=str(RESULTS_PATH), help="results JSON (default: benchmarks/results.json)")
    parser.add_argument("--page", default=str(PAGE_PATH), help="page to write (default: book/performance.md)")
    args = parser.parse_args(argv)

    if args.render_only:
        page.write_page(read_results(args.results), args.page)
        print(f"wrote {args.page} from {args.results}")
        return 0

    warnings.filterwarnings("ignore", message=".*[Ss]parse CSR.*")
    sections = list(args.only or page.SECTIONS)
    try:
        previous = read_results(args.results)
    except (OSError, ValueError):
        previous = {}
    start, load_start = time.perf_counter(), load_average()
    results = {"schema": SCHEMA_VERSION, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "quick": args.quick, "machine": machine_info(), "notes": []}
    if args.quick:
        results["notes"].append("Quick smoke-test run with tiny sizes: these numbers mean nothing.")
    failed = []
    for key in page.SECTIONS:
        if key not in sections:
            if previous.get(key):
                results[key] = previous[key]
                results["notes"].append(f"The {key} figures were carried over from the run of {previous.get('date', '?')}.")
            continue
        print(f"[benchmarks] {key} …", flush=True)
        t0 = time.perf_counter()
        try:
            results[key] = (QUICK if args.quick else FULL)[key]()
        except Exception:  # one broken figure must not lose the others
            failed.append(key)
            results["notes"].append(f"The {key} benchmark failed: {traceback.format_exc(limit=1).strip().splitlines()[-1]}")
            traceback.print_exc()
        print(f"[benchmarks] {key} done in {time.perf_counter() - t0:.1f} s", flush=True)
    if previous.get(setup_time.KEY):  # measured only by `python -m benchmarks.setup_time` (slow): kept as it is
        results[setup_time.KEY] = previous[setup_time.KEY]
    results["wall_seconds"] = time.perf_counter() - start
    load_end = load_average()
    if load_start is not None and load_end is not None:
        results["load_average"] = {"start": load_start, "end": load_end}
        if max(load_start, load_end) >= 1.5:
            results["notes"].append(
                f"The machine was busy (load average {load_start:.1f} → {load_end:.1f} on {results['machine']['cores']} cores): "
                "absolute times are inflated and ratios noisier than on a quiet machine.")
    write_results(results, args.results)
    page.write_page(results, args.page)
    print(f"[benchmarks] wrote {args.results} and {args.page} in {results['wall_seconds']:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
