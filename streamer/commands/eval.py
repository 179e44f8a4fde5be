"""`streamer eval --clean DIR --corruption dirt --model NAME [...] --seed 0 --json OUT.json`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.commands import add_int8_args, at_least
from streamer.errors import ConfigError, check_output, did_you_mean

if TYPE_CHECKING:
    from streamer.evaluate.runner import EvalRequest


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="Table-1 style PSNR/SSIM/UQI of models and classical baselines")
    add_request_args(p, clean_only=True)
    p.add_argument("--no-baselines", action="store_true", help="skip median/bilateral/NLM/BM3D")
    p.add_argument("--no-bm3d", action="store_true", help="skip BM3D (slow)")
    p.add_argument("--report", help="folder for crops, bar chart and table.md")
    p.set_defaults(func=run)


def add_request_args(p: argparse.ArgumentParser, crop_help: str = "0 = whole image",
                     clean_only: bool = False) -> None:
    """The options every evaluation shares (also `streamer eval-signs`); ``clean_only`` offers
    ``--corruption none`` (the clean-input check alone)."""
    p.add_argument("--clean", required=True, help="folder of clean photos")
    p.add_argument("--corruption", required=True, choices=("dirt", "raindrop", "streaks") + (("none",) if clean_only else ()),
                   help="synthetic corruption" + ("; none = only restore the clean photos (how much a "
                                                  "model changes clean frames)" if clean_only else ""))
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="registered model, or a file: trained .safetensors, or an exported .onnx "
                        "(with --backend onnxruntime/openvino; e.g. the INT8 file you will ship); "
                        "repeat for several; see `streamer models`")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                   help="use these weights for model NAME instead of the shipped ones")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "openvino"),
                   help="inference backend (default torch)")
    add_int8_args(p, "onnxruntime/openvino: the model quantized with calib/ (what INT8 costs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heavy", action="store_true", help="corruption beyond the training ranges")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="val = photos held out of training (default); train = the training photos "
                        "(val vs train = the generalisation gap); all = every photo")
    p.add_argument("--limit", type=at_least(1), help="first N photos only")
    p.add_argument("--crop", type=at_least(0), default=0, help=f"centre crop side in px ({crop_help})")
    p.add_argument("--crops", type=at_least(1), default=1,
                   help="crops per photo with --crop: the centre one, then seeded positions (default 1)")
    p.add_argument("--frame-px", type=at_least(0), default=1280, help="size drops, stains and streaks for a frame this many px wide (default 1280, a 720p camera; 0 = each image's own size)")
    p.add_argument("--threads", type=at_least(0), default=1, help="torch threads")
    p.add_argument("--json", dest="json_out", help="write the full result here")


def request_from(args: argparse.Namespace) -> EvalRequest:
    from streamer.evaluate.runner import EvalRequest

    if getattr(args, "json_out", None):
        check_output(Path(args.json_out), "--json", example="eval.json")
    if getattr(args, "report", None):
        check_output(Path(args.report), "--report", folder=True)

    return EvalRequest(
        clean=Path(args.clean), corruption=args.corruption, models=tuple(args.model),
        weights=_weights(args.weights, args.model), backend=args.backend, seed=args.seed, heavy=args.heavy,
        split=args.split, limit=args.limit, crop=args.crop, crops=args.crops, frame_px=args.frame_px, int8=args.int8,
        baselines=not getattr(args, "no_baselines", True), bm3d=not getattr(args, "no_bm3d", True),
        report=Path(args.report) if getattr(args, "report", None) else None, threads=args.threads,
    )


def write_json(args: argparse.Namespace, result: dict) -> None:
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2))


def _weights(pairs: list[str], models: list[str]) -> dict[str, Path]:
    """NAME=PATH per --weights; a NAME not among --model would be ignored silently (the shipped
    weights scored instead of yours), so it is refused."""
    out = {}
    for item in pairs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--weights {item!r}: expected NAME=PATH, e.g. drn=runs/drn/final.safetensors")
        if name not in models:
            hint = did_you_mean(name, models)
            raise ConfigError(f"--weights {item}: {name!r} is not evaluated here{'; ' + hint if hint else ''} "
                              f"(--model gives {', '.join(models)}; add --model {name} to score it)")
        out[name] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streamer.evaluate.runner import run_eval, select_photos

    req = request_from(args)
    photos = select_photos(req)  # a missing folder fails here, before the progress bar
    # the bar shows after 1 s: a bad option (found while the models load) is then one clean line
    with tqdm(total=len(photos), unit="img", desc=f"eval {args.corruption}", delay=1.0) as bar:
        result = run_eval(req, progress=lambda name: bar.update(1), files=photos)
    print(result["table"])
    write_json(args, result)
    return 0
