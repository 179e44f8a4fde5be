"""`streamer calib make`: a calibration set (varied frames + synthetic-dirty twins) for INT8."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.commands import at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calib", help="make INT8 calibration sets")
    csub = p.add_subparsers(dest="calib_command", metavar="ACTION", required=True)
    m = csub.add_parser(
        "make", help="pick varied frames from videos/photos into a calibration folder",
        description="Picks well-spread, varied frames (near-duplicates skipped) from each source, "
                    "resizes them (centre crop, no stretching) and adds seeded synthetic-dirty twins, "
                    "so INT8 ranges cover the dirty frames the camera will deliver.")
    m.add_argument("sources", nargs="+", type=Path, help="video files, image folders or images")
    m.add_argument("-o", "--output", type=Path, required=True, help="folder to write, e.g. calib/")
    m.add_argument("--frames", type=at_least(1), default=32, help="files to write in total (clean + dirty)")
    m.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of every frame (default 640x360)")
    m.add_argument("--dirty", type=float, default=0.5,
                   help="share of the frames that are synthetic-dirty twins of clean picks (default 0.5)")
    m.add_argument("--seed", type=int, default=0, help="seed of the synthetic corruption")
    m.add_argument("--jpeg", type=int, metavar="QUALITY",
                   help="write JPEG at this quality instead of PNG (keeps a repo small)")
    m.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    from streamer.export.calibration import make_calib
    from streamer.preprocess.resize import parse_size

    manifest = make_calib(args.sources, args.output, frames=args.frames, size_wh=parse_size(args.size),
                          dirty_share=args.dirty, seed=args.seed, jpeg_quality=args.jpeg)
    rows = manifest["frames"]
    dirty = sum(1 for r in rows if r["corruption"])
    print(f"wrote {len(rows)} frames to {args.output} ({len(rows) - dirty} clean, {dirty} synthetic-dirty), "
          f"data sha256 {manifest['data_sha256'][:16]}")
    if len(rows) < args.frames:
        print(f"  {args.frames - len(rows)} fewer than asked: the rest of the sources were near-duplicates")
    return 0
