"""`streamer models`: every registered model with its size, cost and weights."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list available models")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamer.models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    wcol = max(len("weights"), *(len(r["weights_file"] or "-") for r in rows)) + 2
    print(f"{'model':<16}{'params':>10}{'weights#':>10}{'kFLOP/px':>10}  {'corruption':<22}"
          f"{'weights':<{wcol}}source")
    for r in rows:
        print(f"{r['name']:<16}{r['params']:>10,}{r['weights_count']:>10,}{r['flops_per_px'] / 1e3:>10.1f}  "
              f"{r['corruption']:<22}{r['weights_file'] or '-':<{wcol}}{r['source']}")
    return 0
