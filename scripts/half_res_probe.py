"""What does running `fast` at half resolution cost? (docs/model-log.md, session 19)

A 4× cheaper network per frame is what an AVX2-only CPU needs for 720p at 30 fps. On the
`streamer eval` validation centre crops (same seeded corruption), restores each crop three ways:
at full resolution; at half resolution with the correction upsampled and added (residual); and
at half resolution with the correction carried to full resolution as a local affine map fitted
between the half-resolution input and output (a guided filter, He et al. 2010 — FastNet's own
head is such a map, ``clean = g·x + b``); and with FastNet's own ``g``, ``b`` upsampled.

    python scripts/half_res_probe.py --corruption dirt --crop 512
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamer.evaluate.metrics import psnr_db
from streamer.evaluate.restore import load_model, restore_image
from streamer.evaluate.runner import EvalRequest, centre_crop, select_photos
from streamer.models.fast import BLOCK, GAIN_MAX
from streamer.synth.pairs import corrupt_file_image, to_uint8
from streamer.train.data import read_rgb


def guided(lo: np.ndarray, out_lo: np.ndarray, full: np.ndarray, r: int, eps: float,
           clip: bool = True, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """He et al.'s guided filter per colour, fitted at half resolution, applied at full."""
    box = lambda a: cv2.boxFilter(a, -1, (2 * r + 1, 2 * r + 1))  # noqa: E731
    mi, mp = box(lo), box(out_lo)
    a = (box(lo * out_lo) - mi * mp) / (box(lo * lo) - mi * mi + eps)
    b = mp - a * mi
    h, w = full.shape[:2]
    up = lambda c: cv2.resize(c, (w, h), interpolation=interp)  # noqa: E731
    out = up(a) * full + up(b)
    return np.clip(out, 0.0, 1.0) if clip else out


def guided_correction(lo: np.ndarray, out_lo: np.ndarray, full: np.ndarray, r: int, eps: float,
                      interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The guided filter fitted to the correction (out − in) instead of the output: where the net
    changes nothing, nothing changes (the output form smooths full-resolution texture)."""
    return np.clip(full + guided(lo, out_lo - lo, full, r, eps, clip=False, interp=interp), 0.0, 1.0)


def own_gain_offset(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """FastNet's ``g``, ``b`` on the half-resolution frame, bilinearly upsampled, applied to ``x``."""
    xs, d1 = net.features(F.avg_pool2d(x, 2))
    w, bias, wx, s = net.head.weight, net.head.bias, net.head_x.weight, 3 * BLOCK * BLOCK
    g = torch.clamp(F.conv2d(d1, w[:s], bias[:s]) + F.conv2d(xs, wx[:s]) + 1.0, 0.0, GAIN_MAX)
    b = F.conv2d(d1, w[s:], bias[s:]) + F.conv2d(xs, wx[s:])
    up = lambda t: F.interpolate(F.pixel_shuffle(t, BLOCK), scale_factor=2.0, mode="bilinear")  # noqa: E731
    return (up(g) * x + up(b)).clamp(0.0, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clean", default="../shared/data/images")
    ap.add_argument("--corruption", default="dirt", choices=("dirt", "raindrop", "streaks", "clean"))
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    net, spec = load_model("fast")
    rows: dict[str, list[float]] = {}
    for path in select_photos(EvalRequest(clean=Path(args.clean), corruption=args.corruption)):
        clean = centre_crop(read_rgb(path), args.crop)
        dirty = (clean if args.corruption == "clean"
                 else corrupt_file_image(clean, path.stem, args.corruption, args.seed)[0])
        h, w = (s - s % 32 for s in dirty.shape[:2])  # half resolution stays a multiple of 16
        dirty, ref = dirty[:h, :w], to_uint8(clean[:h, :w])
        lo = cv2.resize(dirty, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        out_lo = restore_image(net, lo, spec.multiple)
        results = {
            "input": dirty,
            "full resolution": restore_image(net, dirty, spec.multiple),
            "half: residual": np.clip(dirty + cv2.resize(out_lo - lo, (w, h)), 0.0, 1.0),
            "half: guided r=1": guided(lo, out_lo, dirty, 1, 1e-4),
            "half: guided r=2": guided(lo, out_lo, dirty, 2, 1e-4),
            "half: guided r=4": guided(lo, out_lo, dirty, 4, 1e-4),
            "half: corr. r=1": guided_correction(lo, out_lo, dirty, 1, 1e-4),
            "half: corr. r=2": guided_correction(lo, out_lo, dirty, 2, 1e-4),
            "half: corr. r=1 nearest": guided_correction(lo, out_lo, dirty, 1, 1e-4, cv2.INTER_NEAREST),
        }
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(dirty.transpose(2, 0, 1)))[None]
            results["half: own g, b"] = own_gain_offset(net, x)[0].numpy().transpose(1, 2, 0)
        for name, img in results.items():
            rows.setdefault(name, []).append(psnr_db(to_uint8(img), ref))
    base = np.mean(rows["input"])
    print(f"{args.corruption}: {len(rows['input'])} validation crops, {args.crop} px, seed {args.seed}")
    for name, v in rows.items():
        print(f"  {name:20s} {np.mean(v):6.2f} dB  {np.mean(v) - base:+.2f}")


if __name__ == "__main__":
    main()
