"""`streamer eval-signs --clean DIR --corruption dirt --model fast [--heavy] --json OUT.json`."""

from __future__ import annotations

import argparse

from streamer.commands.eval import add_request_args, request_from, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-signs", help="sign legibility (Tesseract OCR) before and after restoration")
    add_request_args(p, crop_help="default 384")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streamer.evaluate.signs import run_signs

    with tqdm(unit="img", desc=f"signs {args.corruption}", delay=1.0) as bar:
        result = run_signs(request_from(args), progress=lambda name: bar.update(1))
    print(result["table"])
    write_json(args, result)
    return 0
