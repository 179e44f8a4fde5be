"""`streamer synth IN_DIR -o OUT_DIR --corruption dirt|raindrop|streaks --seed S [--heavy]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.commands import at_least
from streamer.errors import check_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write (clean, corrupted, mask) PNG triples from clean photos")
    p.add_argument("in_dir", help="folder of clean .jpg/.png/.bmp photos")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--corruption", required=True, choices=("dirt", "raindrop", "streaks"))
    p.add_argument("--seed", type=int, default=0, help="same seed + same file name = same output")
    p.add_argument("--heavy", action="store_true",
                   help="settings beyond the training ranges (generalisation tests)")
    p.add_argument("--frame-px", type=at_least(0), default=1280, help="size drops, stains and streaks for a frame this many px wide (default 1280, a 720p camera; 0 = each image's own size)")
    p.add_argument("--limit", type=at_least(1), help="only the first N files (sorted by name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streamer.synth.pairs import write_pairs
    from streamer.train.data import list_images

    files = list_images(args.in_dir)[: args.limit]
    out = Path(args.out)
    check_output(out, "-o", folder=True)  # before the first photo
    for path in tqdm(files, unit="img", desc=f"synth {args.corruption}"):
        write_pairs([path], out, args.corruption, args.seed, heavy=args.heavy,
                    frame_px=args.frame_px or None)
    print(f"wrote {len(files)} triples (<stem>_clean.png, <stem>_{args.corruption}.png, "
          f"<stem>_{args.corruption}_mask.png) to {out}")
    return 0
