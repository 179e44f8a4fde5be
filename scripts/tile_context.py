"""What explicit tiling costs `fast`: each tile computes its own frame-wide context (`glob`).

`fast` conditions on the mean of its features over the whole input (the dirt's colour is one per
frame), so with `preprocess.tiling.tile` set every tile sees only its own part of the frame. This
cleans the seeded validation photos whole and in tiles (the product's `Cleaner`, torch) and
prints the gain of each and the per-photo difference tiled − whole. `--scale` enlarges the photos
first (bicubic), with the dirt sized for the enlarged frame, to mimic a 4K camera in 1–2k tiles.

    python scripts/tile_context.py --tile 512 --tile 1024
    python scripts/tile_context.py --scale 5 --tile 1024 --tile 2048
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from streamer.cleaner import Cleaner
from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.runner import EvalRequest, select_photos
from streamer.synth.pairs import corrupt_file_image, to_uint8
from streamer.train.data import read_rgb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", type=Path, default=Path("../shared/data/images"))
    ap.add_argument("--model", default="fast")
    ap.add_argument("--tile", type=int, action="append", default=[])
    ap.add_argument("--scale", type=float, default=1.0, help="enlarge the photos by this first")
    ap.add_argument("--corruption", default="dirt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tiles = args.tile or [512]
    cleaners = {0: Cleaner(args.model)} | {t: Cleaner(args.model, tile=t) for t in tiles}
    rows = []
    for path in select_photos(EvalRequest(clean=args.clean, corruption=args.corruption)):
        clean = read_rgb(path)
        if args.scale != 1.0:
            clean = np.clip(cv2.resize(clean, None, fx=args.scale, fy=args.scale,
                                       interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        frame_px = round(1280 * args.scale)
        dirty, _ = corrupt_file_image(clean, path.stem, args.corruption, args.seed, frame_px=frame_px)
        ref, dirty8 = to_uint8(clean), to_uint8(dirty)
        rows.append([psnr_db(dirty8, ref)] + [psnr_db(c(dirty8), ref) for c in cleaners.values()])
        print(f"{path.name:40s} {clean.shape[1]}x{clean.shape[0]}  input {rows[-1][0]:.2f}  "
              + "  ".join(f"{'whole' if t == 0 else f'tile {t}'} {v:.2f}"
                          for t, v in zip(cleaners, rows[-1][1:])), flush=True)
    a = np.array(rows)
    for i, t in enumerate(cleaners):
        gain = a[:, i + 1] - a[:, 0]
        line = f"{'whole' if t == 0 else f'tile {t}':>10s}: gain {gain.mean():+.3f} dB"
        if t:
            diff = a[:, i + 1] - a[:, 1]
            line += (f"; tiled − whole {diff.mean():+.3f} dB (photos {diff.min():+.3f} … "
                     f"{diff.max():+.3f})")
        print(line)


if __name__ == "__main__":
    main()
