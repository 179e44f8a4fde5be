"""`streamer restore INPUT... -o OUTDIR`: clean images and videos; bad inputs are skipped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamer.commands import ARCH_HELP, add_backend_args, add_int8_args, at_least, stop_signals


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="clean image and video files")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images (png/jpg/bmp/webp/tif), video files, or folders of them")
    p.add_argument("-o", "--outdir", required=True, help="folder for <stem>.png / <stem>.mp4")
    p.add_argument("--model", default="fast", help="registered model name or a weights/ONNX path")
    p.add_argument("--arch", help=ARCH_HELP)
    add_backend_args(p, "torch")
    p.add_argument("--threads", type=at_least(0), default=0, help="network CPU threads (0 = all cores)")
    p.add_argument("--tile", type=at_least(0), default=0, help="run big pictures in tiles of this side")
    add_int8_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamer.api import restore
    from streamer.commands.progress import ProgressBar

    with stop_signals(), ProgressBar(disable=not sys.stderr.isatty()) as bar:  # kill: as Ctrl-C
        current: list[Path] = []

        def progress(path: Path, done: int, total: int | None) -> None:
            if not current or current[0] != path:
                bar.reset(path.name)
                current[:] = [path]
            bar.update(done, total)

        results = restore(args.inputs, args.outdir, args.model, args.backend, args.device,
                          arch=args.arch, threads=args.threads, tile=args.tile, int8=args.int8,
                          on_progress=progress)
    failed = [r for r in results if not r.ok]
    for r in results:
        if r.ok:
            print(f"{r.input} -> {r.output} ({r.frames} frame{'s' if r.frames != 1 else ''})")
        else:
            print(f"streamer: error: {r.error}", file=sys.stderr)
    print(f"{len(results) - len(failed)} restored, {len(failed)} failed")
    return 1 if failed else 0
