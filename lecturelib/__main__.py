"""Command line of lecturelib: run a cached experiment and save its JSON and figures.

    python -m lecturelib list
    python -m lecturelib run lottery --profile lecture
    python -m lecturelib run stability --profile ci --set seeds=0,1 --set iterations=200
    python -m lecturelib run lottery --profile paper --set root=/data   # MNIST files under /data/MNIST/raw
    python -m lecturelib grade submissions/   # run students' notebooks, one row per exercise (see lecturelib.grading)
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from dataclasses import fields
from pathlib import Path


def _parse_value(text: str):
    """``"3"`` → 3, ``"0.1"`` → 0.1, ``"0,1"`` → (0, 1), ``"none"`` → None, ``"true"`` → True, else the string."""
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
        return text


def _overrides(pairs: list[str], experiment: str) -> dict:
    from .experiments import CONFIGS

    tuple_fields = {f.name for f in fields(CONFIGS[experiment]) if "tuple" in str(f.type)}
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
    from .experiments import EXPERIMENTS, PROFILES

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
    from . import grading

    grading.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grading.command(args)

    if args.command == "list":
        from . import experiments

        for name in EXPERIMENTS:
            print(f"{name}: {experiments.CONFIGS[name].__doc__.strip()}")
        print(f"profiles: {', '.join(PROFILES)}")
        return 0

    from . import experiments
    from .data import DatasetUnavailableError

    try:
        overrides = _overrides(args.overrides, args.experiment)
        config = experiments.make_config(args.experiment, args.profile, **overrides)
        path = experiments.result_path(args.experiment, config, args.cache_dir)
        cached = path.exists() and not args.no_cache
        record = experiments.run(args.experiment, args.profile, use_cache=not args.no_cache, directory=args.cache_dir, **overrides)
    except DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.experiment} [{args.profile}] {record['config_hash']}: {'read from' if cached else 'written to'} "
          f"{path if not args.no_cache else '(not cached)'}")
    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        out = Path(args.out) if args.out else path.parent
        out.mkdir(parents=True, exist_ok=True)
        for name, fig in experiments.figures(record).items():
            target = out / f"{args.experiment}-{record['config_hash']}-{name}.png"
            partial = target.with_name(f".{target.name}.tmp.png")   # atomic: never a half-written figure
            fig.savefig(partial)
            os.replace(partial, target)
            print(f"figure: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
