"""`streamer compare BASE.json NEW.json`: is the difference between two evaluations real?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamer.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="difference of two `streamer eval --json` results, with 95 %% intervals",
                       description="Pairs two `streamer eval --json` results crop by crop (same photos, "
                                   "corruption, seed and crops) and prints NEW − BASE per method with an "
                                   "interval from resampling photos: whether a fine-tune beats the "
                                   "shipped weights on your frames, or the difference is the photos' luck.")
    p.add_argument("base", help="eval JSON of the reference (e.g. the shipped weights)")
    p.add_argument("new", help="eval JSON of the candidate")
    p.set_defaults(func=run)


def _load(path: str) -> dict:
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read eval result {path}: {exc}") from None
    if not isinstance(result, dict) or "per_image" not in result:
        raise ConfigError(f"{path} is not a `streamer eval --json` result (no per_image scores)")
    return result


def run(args: argparse.Namespace) -> int:
    from streamer.evaluate.compare import compare_results, format_comparison

    rows = compare_results(_load(args.base), _load(args.new))
    print(format_comparison(rows, Path(args.base).name, Path(args.new).name))
    return 0
