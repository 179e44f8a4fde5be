"""`streamer train --config configs/train_<model>.yaml [--resume | --weights W] [--steps N] [--max-minutes M]`."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from streamer.commands import at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on synthetic corruptions of clean photos")
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/train_fast.yaml")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in `out`")
    p.add_argument("--steps", type=at_least(1), help="override the total step count")
    p.add_argument("--max-minutes", type=float, help="stop after this much wall time")
    p.add_argument("--out", help="override the run folder")
    p.add_argument("--data", help="override the clean-photo folder")
    p.add_argument("--weights", help="fine-tune: start from this weights file (fresh optimizer)")
    p.add_argument("--threads", type=at_least(0), help="torch intra-op threads")
    p.add_argument("--workers", type=at_least(0), help="data-synthesis worker processes")
    p.add_argument("--export-weights", metavar="DIR",
                   help="on finish copy final weights and card to DIR/<model>.safetensors/.card.json")
    p.add_argument("--export-name", metavar="NAME",
                   help="file stem for --export-weights (default: the model name)")
    p.add_argument("--card-note", metavar="TEXT",
                   help="note added to the exported card (e.g. how far from converged)")
    p.add_argument("--data-rate", nargs="?", type=float, const=10.0, metavar="SECONDS",
                   help="do not train: measure the patch synthesis per worker (default 10 s a stream) "
                        "and print, as JSON, the step rate the config's workers can feed")
    p.set_defaults(func=run)


def export_run(out: Path, dest: Path, name: str, note: str | None = None) -> tuple[Path, Path]:
    """Copy a finished run's weights and card next to each other under ``dest``."""
    from streamer.models.weights import sha256_file

    dest.mkdir(parents=True, exist_ok=True)
    weights = Path(shutil.copyfile(out / "final.safetensors", dest / f"{name}.safetensors"))
    card = json.loads((out / "card.json").read_text())
    card["weights_sha256"] = sha256_file(weights)
    if note:
        card["note"] = note
    card_path = dest / f"{name}.card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return weights, card_path


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from streamer.config import TrainConfig, load_config
    from streamer.train.loop import summary, train

    overrides = {"steps": args.steps, "max_minutes": args.max_minutes, "out": args.out,
                 "data": args.data, "weights": args.weights, "threads": args.threads, "workers": args.workers}
    cfg = load_config(TrainConfig, args.config, overrides)
    if args.data_rate is not None:
        from streamer.train.feed import data_rate

        print(json.dumps(data_rate(cfg, args.data_rate), indent=2))
        return 0
    bar = None  # drawn at the first step: a bad data folder or weights file is then one clean line
    t_last, step_last = time.monotonic(), None

    def progress(step: int, stats: dict[str, float]) -> None:
        nonlocal t_last, step_last, bar
        if bar is None:  # first step after start/resume: the bar starts there
            bar = tqdm(total=cfg.steps, initial=step - 1, unit="step", dynamic_ncols=True, desc=cfg.model)
            bar.update(1)
            step_last = step
            t_last = time.monotonic()
            return
        now = time.monotonic()
        bar.update(step - bar.n)
        if now - t_last >= 2.0:
            patches_s = (step - step_last) * cfg.batch / (now - t_last)
            bar.set_postfix(loss=f"{stats['loss']:.4f}", lr=f"{stats['lr']:.2g}",
                            patches_s=f"{patches_s:.1f}")
            t_last, step_last = now, step

    try:
        card = train(cfg, resume=args.resume, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    val = card.get("validation", {})
    gains = ", ".join(f"{k} {v:+.2f} dB" if isinstance(v, float) else f"{k} {v}"
                      for k, v in summary(val).items())  # clean: its PSNR, not a "gain" over ∞
    print(f"{cfg.model}: {card.get('steps', 0)} steps in {card.get('wall_time_s', 0):.0f} s; "
          f"validation gain: {gains or 'n/a'}; run folder {cfg.out}")
    if args.export_weights:
        w, c = export_run(Path(cfg.out), Path(args.export_weights),
                          args.export_name or cfg.model, args.card_note)
        print(f"exported {w} and {c}")
    return 0
