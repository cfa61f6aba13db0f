"""Command line of lecturelib: run a cached experiment and save its JSON and figures (the experiments of
chapters 9 and 10, notebooks/09_lottery_ticket.ipynb and notebooks/10_rewinding_stability.ipynb).

    python -m lecturelib list
    python -m lecturelib run lottery --profile lecture
    python -m lecturelib run stability --profile ci --set seeds=0,1 --set iterations=200
    python -m lecturelib run lottery --profile paper --set root=/data   # MNIST files under /data/MNIST/raw
    python -m lecturelib grade submissions/   # run students' notebooks, one row per exercise (see lecturelib.grading)

A mistake in what you ask for (an unknown setting or value, a missing dataset, an unavailable
device, a learning rate that makes training diverge, an unwritable folder) is one line on stderr
and exit status 2; ``LECTURELIB_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from . import atomic


def _parse_value(text: str):
    """``"3"`` → 3, ``"0.1"`` → 0.1, ``"nan"``/``"inf"`` → floats (which the config then refuses), ``"0,1"`` → (0, 1),
    ``"none"`` → None, ``"true"`` → True, else the string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(_parse_value(part) for part in text.split(",") if part.strip())
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return float(lowered)   # nan, inf, -inf, infinity: a number, so the error says what is wrong with it
    except ValueError:
        return text


def _overrides(pairs: list[str], experiment: str) -> dict:
    from .experiments import EXPERIMENTS

    tuple_fields = {f.name for f in fields(EXPERIMENTS[experiment].config) if "tuple" in str(f.type)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        parsed = _parse_value(value)
        if key in tuple_fields and not isinstance(parsed, tuple):
            parsed = (parsed,)
        out[key.strip()] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 = success)."""
    from .configs import PROFILES
    from .experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="python -m lecturelib", description="Run the course's cached experiments.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list experiments and profiles")
    run_parser = sub.add_parser("run", help="run (or read from the cache) one experiment")
    run_parser.add_argument("experiment", choices=EXPERIMENTS)
    run_parser.add_argument("--profile", choices=tuple(PROFILES), default="ci", help="settings preset (default: ci)")
    run_parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override one setting, e.g. --set seeds=0,1 (repeatable)")
    run_parser.add_argument("--cache-dir", default=None, help="cache folder (default: $LECTURELIB_CACHE or ./.lecturelib_cache)")
    run_parser.add_argument("--out", default=None, help="folder for the PNG figures (default: the cache folder)")
    run_parser.add_argument("--no-cache", action="store_true", help="compute even if a cached result exists")
    run_parser.add_argument("--no-figures", action="store_true", help="do not draw figures")
    run_parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                            help="a progress bar with an ETA on stderr (default: only when stderr is a terminal and $CI is unset)")
    from . import grading

    grading.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grading.command(args)

    if args.command == "list":
        for name, experiment in EXPERIMENTS.items():
            print(f"{name}: {experiment.config.__doc__.strip()}")
        print(f"profiles: {', '.join(PROFILES)}")
        return 0

    from . import experiments

    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return _run(args, experiments)
        except (ValueError, TypeError, KeyError, OSError, RuntimeError, ArithmeticError) as error:
            # a user's mistake (a setting, a path, missing data, a device, a diverging lr): one line, no traceback
            if os.environ.get("LECTURELIB_DEBUG"):
                raise
            message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
            return 2


def _run(args: argparse.Namespace, experiments) -> int:
    overrides = _overrides(args.overrides, args.experiment)
    outcome = experiments.run_outcome(args.experiment, args.profile, use_cache=not args.no_cache, directory=args.cache_dir,
                                      progress=args.progress, **overrides)
    record = outcome.record
    where = (f"read from {outcome.path}" if outcome.from_cache else
             f"computed and written to {outcome.path}" if outcome.path is not None else "computed (not cached)")
    print(f"{args.experiment} [{args.profile}] {record['config_hash']}: {where}")
    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        from . import cache, plots

        out = Path(args.out) if args.out else Path(args.cache_dir) if args.cache_dir else cache.cache_dir()
        out.mkdir(parents=True, exist_ok=True)
        for name, fig in plots.experiment_figures(record).items():
            target = out / f"{args.experiment}-{record['config_hash']}-{name}.png"
            with atomic.replacing(target) as partial:   # never a half-written figure
                fig.savefig(partial)
            print(f"figure: {target}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
