"""The library's front door: ``run(cfg)`` for a camera or file job, ``restore(...)`` for batches.

Neither prints nor exits; progress goes to an optional callback the CLI turns into a bar.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from streamer.config import RunConfig, check_config, load_config
from streamer.errors import ConfigError, StreamerError
from streamer.pipeline import Pipeline, Progress, RunResult
from streamer.preprocess.color import IMAGE_SUFFIXES
from streamer.stats import RunStats

if TYPE_CHECKING:
    from streamer.cleaner import Cleaner

log = logging.getLogger(__name__)

# A folder given to ``restore`` stands for its pictures and videos (other files in it are not media)
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg",
                  ".flv", ".wmv", ".3gp", ".gif"}
# Pictures above this are refused: at 100 MP a float32 copy is 1.2 GB and FastNet needs ~1 TFLOP
# (minutes on a CPU). Crop or downscale such a picture, or raise this and run on a GPU.
MAX_IMAGE_PIXELS = 50_000_000


def run(cfg: RunConfig | dict | str | Path, *, stats: RunStats | None = None,
        stop: threading.Event | None = None, on_progress: Progress | None = None) -> RunResult:
    """Read ``cfg.source``, clean every frame, write to all ``cfg.sinks``; close all at the end.

    ``cfg``: a ``RunConfig``, a dict in the YAML's shape or a YAML path (either checked like
    `streamer run --config`: a ConfigError naming the key). ``stats`` lets a caller (web view,
    tests) watch the run; setting ``stop`` ends it cleanly. A ``cameras:`` config runs them all
    here, batched (``streamer.site``; a ``SiteResult``).
    """
    if isinstance(cfg, dict):
        cfg = check_config(RunConfig, cfg, "cfg")
    elif isinstance(cfg, (str, Path)):
        cfg = load_config(RunConfig, cfg)
    elif not isinstance(cfg, RunConfig):
        raise ConfigError(f"run takes a RunConfig, a dict or a YAML path, not {type(cfg).__name__}")
    if cfg.source is None:
        from streamer.site import run_site

        return run_site(cfg, stats=stats, stop=stop, on_progress=on_progress)
    from streamer.backends import open_backend
    from streamer.preprocess.frames import FrameRestorer
    from streamer.preprocess.resize import parse_size
    from streamer.sinks.pool import SinkPool
    from streamer.sources import source_from_config

    stats = stats or RunStats(model=cfg.model.name, backend=cfg.backend.kind)
    stats.expect(cfg.source.name)  # before the view opens: /healthz is 503 until the camera is up
    size = parse_size(cfg.preprocess.resize) if cfg.preprocess.resize else None
    source = source_from_config(cfg.source, stats)
    sinks: list = []
    pool = SinkPool(cfg.encoder, stats)
    backend = None
    handed_over = False  # once the pipeline runs, it closes the sinks (last, after the source)
    try:
        backend = open_backend(cfg.model.name, cfg.backend.kind, cfg.backend.device,
                               arch=cfg.model.arch, threads=cfg.backend.threads, fp16=cfg.backend.fp16,
                               int8=cfg.backend.int8, calib=cfg.backend.calib, inflight=cfg.backend.inflight)
        info = getattr(source, "info", None)
        fps = getattr(info, "fps", 0.0) or cfg.source.fps or 0.0
        # a file's sound goes along into file outputs, as in `restore` (not for loops: it would end
        # after the first pass)
        audio = getattr(source, "path", None) if getattr(info, "has_audio", False) and not cfg.source.loop else None
        # `{camera}` filled in; two views or RTSP paths on one port share its server (the pool)
        sinks = pool.open(cfg.camera_list()[0].sinks, fps, audio_from=audio)
        restorer = FrameRestorer(backend, size=size, tile=cfg.preprocess.tiling.tile,
                                 overlap=cfg.preprocess.tiling.overlap,
                                 keep_original=any(s.side_by_side or s.kind == "view"
                                                   for s in cfg.sinks))
        pipeline = Pipeline(source, restorer, sinks, stats=stats, queue_frames=cfg.queue_frames,
                            max_frames=cfg.max_frames, on_progress=on_progress, stop=stop,
                            stats_every_s=cfg.stats_every_s if source.live else 0.0)
        handed_over = True
        return pipeline.run()
    finally:
        source.close()
        if not handed_over:
            pool.close()
        if backend is not None:
            backend.close()


@dataclass
class RestoreResult:
    """One input of ``restore``: where it went, or why not."""

    input: Path
    output: Path | None
    frames: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _restore_image(path: Path, out: Path, cleaner: "Cleaner") -> int:
    import cv2
    import numpy as np

    from streamer.errors import SourceError, SinkError
    from streamer.preprocess.color import to_rgb8

    data = np.fromfile(str(path), np.uint8) if path.is_file() else None
    if data is None:
        raise SourceError(f"{path}: file not found")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not a readable image")
    h, w = image.shape[:2]
    if h * w > MAX_IMAGE_PIXELS:
        raise SourceError(f"{path}: image is {w}x{h} ({h * w / 1e6:.0f} MP), above the "
                          f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit of restore; crop or downscale it")
    rgb = to_rgb8(image)  # 16-bit is scaled to 8-bit (the network works on 8-bit frames)
    clean = cleaner(rgb)  # tiles pictures above cleaner.AUTO_TILE_PIXELS itself
    gray = image.ndim == 2 or image.shape[2] == 1  # grayscale in, grayscale out
    bgr = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY if gray else cv2.COLOR_RGB2BGR)
    if image.ndim == 3 and image.shape[2] == 4:  # keep transparency as it was
        alpha = image[..., 3] if image.dtype == np.uint8 else (image[..., 3] >> 8).astype(np.uint8)
        bgr = np.dstack([bgr, alpha])
    ok, encoded = cv2.imencode(".png", bgr)
    if not ok:
        raise SinkError(f"{out}: PNG encoding failed")
    _write_atomic(out, encoded.tobytes())
    return 1


def _write_atomic(out: Path, data: bytes) -> None:
    from streamer.errors import SinkError

    tmp = out.with_name(f".{out.name}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"{out}: cannot write ({exc.strerror}); check the folder is writable") from exc


def _restore_video(path: Path, out: Path, restorer: Callable, on_progress: Progress | None) -> int:
    from streamer.sinks.file import FileSink
    from streamer.sources.file import FileSource

    source = FileSource(path, path.name)
    tmp = out.with_name(f".{out.name}.part")
    sink = FileSink(tmp, fps=source.info.fps, fmt_suffix=out.suffix, fragmented=False,
                    audio_from=path if source.info.has_audio else None)
    try:
        result = Pipeline(source, restorer, [sink], on_progress=on_progress).run()
        if result.interrupted:
            raise KeyboardInterrupt
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return result.frames_out


def _clash(path: Path, target: Path, claimed: dict[Path, Path]) -> str | None:
    """Why ``path`` must not be written to ``target`` (its output, resolved): it is the input
    itself, or an earlier input of this call already writes it; else None."""
    if target == path.resolve():
        return f"{target}: the output would replace its input; restore into another folder"
    if target in claimed:
        return (f"{target}: {claimed[target]} already writes this name in this run; restore "
                "same-named files into separate folders")
    return None


def _media(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """One path or many; a folder stands for the pictures and videos directly in it (sorted)."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for item in map(Path, items):
        found = sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES) if item.is_dir() else []
        out += found or [item]  # an empty folder stays, to be reported
    return out


def restore(inputs: str | Path | Iterable[str | Path], outdir: str | Path, model: str | Path = "fast",
            backend: str = "torch", device: str | None = None, *, arch: str | None = None,
            threads: int = 0, tile: int = 0, overlap: int | None = None, int8: bool | str = False,
            on_progress: Callable[[Path, int, "int | None"], None] | None = None) -> list[RestoreResult]:
    """Clean each image (-> ``outdir/<stem>.png``) and video (-> ``outdir/<stem>.mp4``);
    ``inputs`` is one path or several, a folder meaning the pictures and videos in it.

    One bad input does not stop the others: it gets a ``RestoreResult`` with ``error`` set.
    Outputs are written under a temporary name and renamed, never left half-written.
    """
    from streamer.cleaner import Cleaner
    from streamer.errors import SinkError, check_output

    outdir = Path(outdir)
    check_output(outdir, folder=True, error=SinkError)  # before the model opens
    results: list[RestoreResult] = []
    claimed: dict[Path, Path] = {}  # output -> the input writing it: nothing is overwritten
    with Cleaner(model, backend, device, arch=arch, threads=threads, int8=int8, tile=tile,
                 overlap=overlap) as cleaner:
        for path in _media(inputs):
            if path.is_dir():
                results.append(RestoreResult(path, None, error=f"{path}: a folder with no pictures or videos in it"))
                continue
            is_image = path.suffix.lower() in IMAGE_SUFFIXES
            out = outdir / f"{path.stem}{'.png' if is_image else '.mp4'}"
            progress = (lambda n, total, p=path: on_progress(p, n, total)) if on_progress else None
            target = out.resolve()
            clash = _clash(path, target, claimed)
            if clash:
                results.append(RestoreResult(path, None, error=clash))
                continue
            claimed[target] = path
            try:
                frames = (_restore_image(path, out, cleaner) if is_image
                          else _restore_video(path, out, cleaner.restorer, progress))
                results.append(RestoreResult(path, out, frames))
            except StreamerError as exc:
                log.debug("%s: skipped: %s", path, exc)  # the caller reports results
                results.append(RestoreResult(path, None, error=str(exc)))
    return results
