"""Capacity probe: train FastNet at another width with the same recipe (docs/model-log.md E9).

    python scripts/capacity_probe.py --width 2 --config configs/train_fast_probe_capacity.yaml

Registers ``fast-w<width>`` (channels scaled, same layout) for this process only, so the product's
model list stays clean, then runs the ordinary training loop on it. Width 1 is plain ``fast``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamer.config import TrainConfig, load_config  # noqa: E402
from streamer.models.fast import FastNet  # noqa: E402
from streamer.models.registry import register  # noqa: E402
from streamer.train.loop import train  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier of 32/48/64 (0.5 … 2)")
    ap.add_argument("--config", required=True)
    ap.add_argument("--data")
    ap.add_argument("--max-minutes", type=float)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    ap.add_argument("--out", help="run folder (default runs/probe-<model>)")
    ap.add_argument("--resume", action="store_true", help="continue the checkpoint in the run folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s %(message)s")
    name = "fast"
    if args.width != 1.0:
        name = f"fast-w{args.width:g}"
        c1, c2, c3 = (int(round(c * args.width / 8)) * 8 for c in (32, 48, 64))
        register(name, multiple=16, c1=c1, c2=c2, c3=c3)(FastNet)
    cfg = load_config(TrainConfig, args.config, {"model": name, "data": args.data,
                                                 "max_minutes": args.max_minutes, "device": args.device,
                                                 "out": args.out or f"runs/probe-{name}"})
    card = train(cfg, resume=args.resume)
    print(name, card["params"], card["flops_per_px"], card["steps"], card["validation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
