"""Where is a corruption's error, and how much of it does a model remove? (docs/model-log.md E8)

On the `streamer eval` validation crops (same seeded corruption), splits the input's squared
error by the corruption mask (α for dirt) and reports the share a model leaves in each bin. For
dirt it also prints oracles: pixels with α at most a threshold restored perfectly (what the
affine head can invert in principle: its gain g = 1/(1−α) is bounded to 4, i.e. α ≤ 0.75), the
rest left dirty or filled by OpenCV inpainting from the perfectly restored neighbourhood. For
raindrops: the true drops filled by inpainting (what perfect detection alone would buy).

    python scripts/error_split.py --corruption dirt --model fast [--per-image]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.restore import load_model, restore_image
from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.synth.pairs import corrupt_file_image, to_uint8
from streamer.train.data import read_rgb

BINS = (0.0, 0.03, 0.3, 0.6, 0.75, 0.9, 1.01)


def _sq_err(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return ((a.astype(np.float64) - ref) ** 2).sum(-1)


def _oracles(rows: dict[str, list[float]], alpha: np.ndarray, d8: np.ndarray, ref: np.ndarray) -> None:
    for t in (0.5, 0.75, 0.9):
        hole = alpha > t
        oracle = np.where(hole[..., None], d8, ref)
        rows.setdefault(f"oracle: perfect where α ≤ {t}", []).append(psnr_db(oracle, ref))
        filled = cv2.inpaint(np.ascontiguousarray(oracle), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        rows.setdefault(f"oracle: … and inpaint α > {t}", []).append(psnr_db(filled, ref))


def _drop_oracles(rows: dict[str, list[float]], mask: np.ndarray, d8: np.ndarray, ref: np.ndarray) -> None:
    """What detection alone would buy: the true drops (grown by 1 px) filled by OpenCV inpainting."""
    for t in (0.03, 0.3):
        hole = cv2.dilate((mask > t).astype(np.uint8), np.ones((3, 3), np.uint8))
        for name, flag in (("Telea", cv2.INPAINT_TELEA), ("Navier-Stokes", cv2.INPAINT_NS)):
            filled = cv2.inpaint(np.ascontiguousarray(d8), hole, 5, flag)
            rows.setdefault(f"oracle: inpaint drops > {t} ({name})", []).append(psnr_db(filled, ref))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--corruption", default="dirt", choices=("dirt", "raindrop", "streaks"))
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heavy", action="store_true")
    ap.add_argument("--model", help="split this model's remaining error too (e.g. fast)")
    ap.add_argument("--weights", help="weights file for --model instead of the shipped one")
    ap.add_argument("--per-image", action="store_true")
    args = ap.parse_args()
    net = load_model(args.model, args.weights) if args.model else None
    rows: dict[str, list[float]] = {}
    nb = len(BINS) - 1
    err, left, area = np.zeros(nb), np.zeros(nb), np.zeros(nb)
    for path in select_photos(EvalRequest(clean=Path(args.clean), corruption=args.corruption)):
        clean = centre_crop(read_rgb(path), args.crop)
        dirty, mask = corrupt_file_image(clean, path.stem, args.corruption, args.seed, heavy=args.heavy)
        alpha = mask[..., 0]
        ref, d8 = to_uint8(clean), to_uint8(dirty)
        rows.setdefault("input", []).append(psnr_db(d8, ref))
        se_in = _sq_err(d8, ref)
        se_out = None
        if net is not None:
            out8 = to_uint8(restore_image(net[0], dirty, net[1].multiple))
            rows.setdefault(args.model, []).append(psnr_db(out8, ref))
            se_out = _sq_err(out8, ref)
        idx = np.digitize(alpha, BINS) - 1
        for b in range(nb):
            err[b] += se_in[idx == b].sum()
            area[b] += (idx == b).sum()
            left[b] += se_out[idx == b].sum() if se_out is not None else 0.0
        if args.corruption == "dirt":
            _oracles(rows, alpha, d8, ref)
        elif args.corruption == "raindrop":
            _drop_oracles(rows, alpha, d8, ref)
        if args.per_image and net is not None:
            print(f"{path.stem:32s} masked {100 * (alpha >= 0.03).mean():5.1f} %  "
                  f"{args.model} {rows[args.model][-1] - rows['input'][-1]:+6.2f} dB")
    base = np.mean(rows["input"])
    print(f"\n{args.corruption}: {len(rows['input'])} validation crops, {args.crop} px\n")
    print(f"{'':40s} PSNR    gain")
    for name, v in rows.items():
        print(f"{name:40s} {np.mean(v):5.2f}  {np.mean(v) - base:+6.2f}")
    total = err.sum()
    print("\nsquared error by mask value (α for dirt), as % of the input's total:")
    print(f"  {'mask':13s} {'area':>7s} {'input':>7s}" + (f" {args.model:>9s}" if net else ""))
    for b in range(nb):
        if area[b]:
            model = f" {100 * left[b] / total:8.1f}%" if net else ""
            print(f"  [{BINS[b]:.2f}, {min(BINS[b + 1], 1):.2f})  {100 * area[b] / area.sum():6.1f}% "
                  f"{100 * err[b] / total:6.1f}%{model}")
    if net:
        print(f"  {'all':13s} {100.0:6.1f}% {100.0:6.1f}% {100 * left.sum() / total:8.1f}%")


if __name__ == "__main__":
    main()
