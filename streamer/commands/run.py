"""`streamer run --config configs/NAME.yaml [overrides]`: one camera or file, or a `cameras:` site."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streamer.commands import ARCH_HELP, add_backend_args, add_int8_args, at_least, stop_signals
from streamer.errors import SinkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="clean a camera stream or video file (see configs/)")
    p.add_argument("--config", required=True, help="YAML file, e.g. configs/demo.yaml")
    p.add_argument("--source", help="override source.url: a file, rtsp://… or /dev/videoN")
    p.add_argument("--sink", action="append",
                   help="replace the config's sinks (repeat for several): out/x.mp4|.mkv, rtsp://… (push), "
                        "rtsp-serve://127.0.0.1:8554/name (serve), view or view://host:port (web view), null")
    p.add_argument("--model", help="registered model name or a weights/ONNX/engine path")
    p.add_argument("--arch", help=ARCH_HELP)
    add_backend_args(p)
    p.add_argument("--threads", type=at_least(0), help="network CPU threads (0 = all cores)")
    add_int8_args(p, default=None)
    p.add_argument("--max-frames", type=at_least(1), help="stop after this many frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for files")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line options as a nested dict in the YAML's shape (None = not given)."""
    return {
        "source": {"url": args.source},
        "sinks": args.sink,
        "model": {"name": args.model, "arch": args.arch},
        "backend": {"kind": args.backend, "device": args.device, "threads": args.threads, "int8": args.int8},
        "max_frames": args.max_frames,
    }


def _int8_fits(cfg: Any, args: argparse.Namespace) -> Any:
    """A config's `int8: true` (demo.yaml has it) does not follow a `--model`/`--backend` given here
    that cannot take it (an exported file runs at the precision it was exported with; TensorRT and
    torch have no on-the-fly INT8); an explicit `--int8` still gets its error."""
    from streamer.export.formats import EXPORTED_SUFFIXES

    if args.int8 is not None or cfg.source is None or not cfg.backend.int8:
        return cfg
    exported = bool(args.model) and args.model.lower().endswith(EXPORTED_SUFFIXES)
    other_backend = bool(args.backend) and args.backend not in ("onnxruntime", "openvino")
    if not (exported or other_backend):
        return cfg
    why = f"{args.model} runs as exported" if exported else f"--backend {args.backend} has no on-the-fly int8"
    print(f"streamer: {args.config}'s int8: true left out ({why})", file=sys.stderr)
    return cfg.model_copy(update={"backend": cfg.backend.model_copy(update={"int8": False})})


def run(args: argparse.Namespace) -> int:
    from streamer.api import run as run_pipeline
    from streamer.commands.progress import ProgressBar
    from streamer.config import RunConfig, load_config

    cfg = _int8_fits(load_config(RunConfig, args.config, overrides(args)), args)
    with stop_signals():
        with ProgressBar(disable=args.no_progress or not sys.stderr.isatty()) as bar:
            result = run_pipeline(cfg, on_progress=bar.update)
        return _summary(cfg, result)


def _summary(cfg: Any, result: Any) -> int:
    """The closing lines and the exit status; a push output that delivered nothing raises
    SinkError after them (the CLI's one error line, exit 1)."""
    outs = ", ".join(s.url for s in cfg.camera_list()[0].sinks)
    note = ""
    if result.interrupted:
        note = " (interrupted before the end: partial output)" if _has_an_end(cfg) else " (interrupted)"
    cameras = getattr(result, "cameras", {})  # a `cameras:` site: one line per camera too
    if cameras:
        outs = f"{len(cameras)} cameras"
    print(f"{result.frames_out} frames in {result.seconds:.1f} s: {result.fps:.1f} fps -> {outs}{note}")
    if result.dropped or result.reconnects:
        print(f"dropped {result.dropped} frames, {result.reconnects} reconnects")
    for name, cam in cameras.items():
        state = f"FAILED: {cam.error}" if cam.error else f"down at the end ({cam.down})" if cam.down else "ok"
        print(f"  {name}: in {cam.frames_in}, out {cam.frames_out}, dropped {cam.dropped}, "
              f"reconnects {cam.reconnects}, {state}")
    if not cameras and cfg.source is not None:  # one camera: said only when it was down
        down = result.stats.camera(cfg.source.name).down_reason
        if down:
            print(f"{cfg.source.name}: down at the end ({down})")
    if cameras and result.batches:
        print(f"{result.batches} batches, {result.batched_frames / result.batches:.2f} frames per batch")
    _outputs(result)
    if any(cam.error for cam in cameras.values()):
        return 1
    return 130 if result.interrupted and _has_an_end(cfg) else 0


def _outputs(result: Any) -> None:
    """A push output that lost frames gets a line; one that delivered none of them (its server was
    never there) fails the run, after the summary and with every file written: a live output never
    stops the run, but the run must not read as a success. One that delivered some and then lost
    its server is a line, not a failure (its log said so as it happened)."""
    cameras = getattr(result, "cameras", {})
    named = ([(f"{name}: ", d) for name, cam in cameras.items() for d in cam.outputs] if cameras
             else [("", d) for d in result.outputs])
    for prefix, d in named:
        if not d.failed and d.delivered < d.frames:
            print(f"{prefix}{d.summary()}")
    failed = [f"{prefix}{d.summary()}" for prefix, d in named if d.failed]
    if failed:
        raise SinkError("; ".join(failed))


def _has_an_end(cfg: Any) -> bool:
    """A job with a file that would have ended by itself: stopped early, its output is partial and
    the exit status says so (130, as for any command cut short by Ctrl-C). Cameras and looping
    files only ever stop that way, so for them Ctrl-C is the normal end (0)."""
    sources = [cfg.source] if cfg.source is not None else [cam.source for cam in cfg.cameras]
    return any(src.finite for src in sources)
