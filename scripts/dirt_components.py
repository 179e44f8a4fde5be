"""Which part of the synthetic dirt does a model clean? (docs/model-log.md, session 20)

The dirt (streamer.synth.dirt) is the max of four α layers: mud spots, sharp opaque flecks,
mid-scale smudges and a faint broad haze (peak α ≤ 0.2). Here each validation photo gets the
same seeded dirt as `streamer eval`, then again with layers switched off by zeroing their opacity
(the random draws stay in step, so the remaining layers are pixel for pixel the same), and the
model's gain is measured on each variant. Issue 9's +6.5 dB is the paper's gain on its dirt; this
says how far `fast` is from it on the spot-like part the paper's 23-px net could remove, and on
the haze alone.

    python scripts/dirt_components.py [--model fast] [--weights W] [--crop 256 | --crop 0]
        [--only "no haze" ...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.restore import load_model, restore_image
from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.synth.dirt import DirtParams, apply_dirt
from streamer.synth.pairs import FRAME_PX, image_rng, to_uint8
from streamer.train.data import read_rgb

OFF = (0.0, 0.0)
VARIANTS = {  # name -> DirtParams overrides; zero opacity keeps the draws in step
    "all layers (as `streamer eval`)": {},
    "no haze": dict(haze=OFF),
    "no haze, no smudges": dict(haze=OFF, opacity=OFF),
    "spots only": dict(haze=OFF, opacity=OFF, flecks=OFF),  # the dirt colour is drawn anew here
    "flecks only": dict(haze=OFF, opacity=OFF, spot_opacity=OFF),
    "smudges only": dict(haze=OFF, spot_opacity=OFF, flecks=OFF),
    "haze only": dict(opacity=OFF, spot_opacity=OFF, flecks=OFF),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--model", default="fast")
    ap.add_argument("--weights", help="weights file for --model instead of the shipped one")
    ap.add_argument("--crop", type=int, default=256, help="centre crop side; 0 = whole photos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), help="these variants (default: all)")
    ap.add_argument("--json", help="also write per-photo input/output PSNR (for paired comparisons)")
    args = ap.parse_args()
    variants = {name: VARIANTS[name] for name in args.only or VARIANTS}
    net, spec = load_model(args.model, args.weights)
    photos = select_photos(EvalRequest(clean=Path(args.clean), corruption="dirt"))
    rows: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in variants}
    for path in photos:
        clean = read_rgb(path)
        clean = centre_crop(clean, args.crop) if args.crop else clean
        ref = to_uint8(clean)
        for name, overrides in variants.items():
            dirty, _ = apply_dirt(clean, image_rng(args.seed, path.stem), replace(DirtParams(), **overrides),
                                  frame_px=FRAME_PX)
            out = to_uint8(restore_image(net, dirty, spec.multiple))
            rows[name][0].append(psnr_db(to_uint8(dirty), ref))
            rows[name][1].append(psnr_db(out, ref))
    where = f"{args.crop}-px centre crops" if args.crop else "whole photos"
    print(f"dirt layers, {len(photos)} validation photos, {where}, seed {args.seed}, {args.model}"
          f"{' ' + args.weights if args.weights else ''}\n")
    print("| dirt | input dB | output dB | gain dB |\n|---|---|---|---|")
    for name, (inp, out) in rows.items():
        gain = np.mean(np.subtract(out, inp))
        print(f"| {name} | {np.mean(inp):.2f} | {np.mean(out):.2f} | {gain:+.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "weights": args.weights, "model": args.model, "crop": args.crop, "seed": args.seed,
            "photos": [p.stem for p in photos],
            "rows": {name: {"input_db": inp, "output_db": out} for name, (inp, out) in rows.items()}}, indent=1))


if __name__ == "__main__":
    main()
