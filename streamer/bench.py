"""`streamer bench`: fps, per-stage ms and CPU ms per frame of the full pipeline and of passthrough
(decode+encode) on the same clip in the same run, so the network's share is plain to see: in wall
time (stages overlap in threads) and in CPU time (what a fully busy small CPU pays per frame).

The JSON is a dict of sections; later issues add theirs (``streams``, ``latency``) beside
``runs`` without changing what is there.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamer.backends import resolve_device
from streamer.errors import ConfigError
from streamer.stats import STAGES
from streamer.sysinfo import host, versions

SCHEMA = 1
DEMO_CLIP = Path(__file__).parent / "assets" / "demo.mp4"  # the repo's assets/, packaged with streamer


def _bench_clip(clip: str | Path | None, frames: int) -> Path:
    """The clip to benchmark on (default: the demo clip), refusing runs too short to measure."""
    src = Path(clip) if clip else DEMO_CLIP
    if not src.is_file():
        raise ConfigError(f"{src}: benchmark clip not found; pass --clip VIDEO")
    if frames < 2:
        raise ConfigError(f"bench: --frames {frames} is too few; use 30 or more")
    return src


def make_clip(src: Path, dst: Path, size: tuple[int, int], frames: int) -> dict[str, Any]:
    """Loop/scale ``src`` into exactly ``frames`` frames of ``size`` (not timed)."""
    from streamer.preprocess.resize import resize
    from streamer.sinks.file import FileSink
    from streamer.sources.file import FileSource

    source = FileSource(src, loop=True)
    sink = FileSink(dst, fps=source.info.fps)
    with sink:
        for frame in source:
            from dataclasses import replace

            sink.write(replace(frame, image=resize(frame.image, size)))
            if sink.frames >= frames:
                source.close()
                break
    return {"source": str(src), "fps": source.info.fps, "frames": frames, "size": f"{size[0]}x{size[1]}"}


def _stage_ms(result: Any, cam: str) -> dict[str, float]:
    reg = result.stats.registry
    out = {}
    for stage in STAGES:
        total = reg.get_sample_value("streamer_stage_seconds_sum", {"camera": cam, "stage": stage}) or 0.0
        count = reg.get_sample_value("streamer_stage_seconds_count", {"camera": cam, "stage": stage}) or 0.0
        out[stage] = round(1000.0 * total / count, 3) if count else 0.0
    return out


def _run_once(clip: Path, out: Path, backend: Any, preset: str | None = None) -> dict[str, Any]:
    from streamer.config import EncoderConfig
    from streamer.pipeline import Pipeline
    from streamer.preprocess.frames import FrameRestorer
    from streamer.sinks.file import FileSink
    from streamer.sources.file import FileSource

    source = FileSource(clip, "bench")
    sink = FileSink(out, fps=source.info.fps,
                    encoder=EncoderConfig(preset=preset) if preset else EncoderConfig())
    cpu0 = time.process_time()  # every thread of this process: decode, network, encode
    result = Pipeline(source, FrameRestorer(backend), [sink]).run()
    cpu_s = time.process_time() - cpu0
    stages = _stage_ms(result, "bench")
    return {"fps": round(result.fps, 2), "frames": result.frames_out, "wall_s": round(result.seconds, 3),
            "stage_ms": stages, "serial_ms": round(sum(stages.values()), 3),
            "cpu_ms_per_frame": round(1000.0 * cpu_s / max(1, result.frames_out), 2)}


def bench(model: str = "fast", backend: str = "torch", device: str | None = None, *,
          size: tuple[int, int] = (1280, 720), frames: int = 60, threads: int = 0,
          arch: str | None = None, clip: str | Path | None = None, int8: bool | str = False,
          preset: str | None = None, inflight: int = 2) -> dict[str, Any]:
    """Measure passthrough then the full pipeline on one prepared clip; returns the JSON dict."""
    import torch
    from pydantic import ValidationError

    from streamer.backends import open_backend
    from streamer.config import EncoderConfig
    from streamer.frame import Frame
    from streamer.preprocess.frames import FrameRestorer

    try:  # a typo: one line, before any work
        encoder = EncoderConfig(preset=preset) if preset else EncoderConfig()
    except ValidationError as exc:
        raise ConfigError(f"--{exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    src = _bench_clip(clip, frames)
    device = resolve_device(device, backend)  # the report names where it ran
    report: dict[str, Any] = {"schema": SCHEMA, "model": model, "backend": backend, "device": device,
                              "int8": int8, "inflight": inflight, "encoder_preset": encoder.preset}
    exported = _exported(model)
    if exported:
        report["exported"] = exported
    # the model first: a wrong size or file fails at once, not after the passthrough run
    net = open_backend(model, backend, device, arch=arch, threads=threads, int8=int8, inflight=inflight)
    try:
        # first call builds kernels/plans, on the path the pipeline takes (uint8 for OpenVINO)
        FrameRestorer(net)(Frame(np.zeros((size[1], size[0], 3), np.uint8), 0.0, 0))
        with tempfile.TemporaryDirectory(prefix="streamer-bench-") as tmp:
            clip_path = Path(tmp) / "clip.mp4"
            report["clip"] = make_clip(src, clip_path, size, frames)
            runs: dict[str, Any] = {"passthrough": _run_once(clip_path, Path(tmp) / "pass.mp4", None, preset)}
            runs["pipeline"] = _run_once(clip_path, Path(tmp) / "full.mp4", net, preset)
    finally:
        net.close()
    report["runs"] = runs
    # what the network adds in CPU time per frame; with every core busy, fps ≈ cores × 1000 / cpu ms
    report["network_cpu_ms_per_frame"] = round(runs["pipeline"]["cpu_ms_per_frame"]
                                               - runs["passthrough"]["cpu_ms_per_frame"], 2)
    report["threads"] = {"network": threads, "torch": torch.get_num_threads(),  # 0 = engine default
                         "cpu_count": os.cpu_count()}
    report["versions"] = versions()
    report["host"] = host()
    return report


def _exported(model: str) -> dict[str, Any]:
    """What an exported file is, from its sidecar (precision, shapes, calibration, builder): a
    report of an .onnx/.engine run says whether it was FP16 or INT8 and which profile."""
    from streamer.errors import EngineError
    from streamer.export.formats import EXPORTED_SUFFIXES
    from streamer.export.sidecar import read_sidecar

    if Path(model).suffix not in EXPORTED_SUFFIXES:
        return {}
    try:
        side = read_sidecar(model)
    except EngineError:  # an ONNX file from elsewhere runs without one
        return {"file": str(model), "sidecar": None}
    return {"file": str(model), "format": side.format, "precision": side.precision, "shapes": side.shapes,
            "calibration_sha256": (side.calibration or {}).get("data_sha256"),
            "tensorrt_version": side.tensorrt_version, "gpu": side.model_dump()["gpu"]}


class _LatencySink:
    """Records capture->output seconds and the last output time per camera (bench only)."""

    def __init__(self) -> None:
        self.latency_s: dict[str, list[float]] = {}
        self.first_s: dict[str, float] = {}  # capture time of the camera's first frame
        self.last_s: dict[str, float] = {}

    def write(self, frame: Any) -> None:
        import time

        now = time.monotonic()
        self.latency_s.setdefault(frame.source, []).append(now - frame.captured_s)
        self.first_s.setdefault(frame.source, frame.captured_s)
        self.last_s[frame.source] = now

    def fps(self, cams: list[str]) -> float:
        """Frames of ``cams`` over first capture to last output: no model loading or shutdown."""
        frames = sum(len(self.latency_s.get(c, [])) for c in cams)
        span = max(self.last_s.get(c, 0.0) for c in cams) - min(self.first_s.get(c, 0.0) for c in cams)
        return round(frames / span, 2) if frames and span > 0 else 0.0

    def close(self) -> None:
        pass


def stream_counts(spec: str) -> list[int]:
    """``8`` -> [1, 2, 4, 8] (doubling up to N); ``1,3,6`` -> exactly those."""
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(f"bench: --streams {spec!r}: give N or a list like 1,2,4,8 (all >= 1)")
    if len(values) > 1:
        return sorted(set(values))
    counts, n = [], 1
    while n < values[0]:
        counts.append(n)
        n *= 2
    return counts + [values[0]]


def _streams_once(clip: Path, n: int, max_batch: int, timeout_ms: float, model: dict[str, Any],
                  backend: dict[str, Any]) -> dict[str, Any]:
    from streamer.config import RunConfig
    from streamer.site import Site

    cfg = RunConfig.model_validate({
        "cameras": [{"name": f"cam{i}", "source": str(clip)} for i in range(n)],
        "sinks": ["bench:{camera}"],  # a name per camera: one for all is refused as "published twice"
        "model": model, "backend": backend,
        "batching": {"max_batch": max_batch, "timeout_ms": timeout_ms},
        "queue_frames": 2, "stats_every_s": 0})
    site = Site(cfg)
    sink = _LatencySink()
    for i in range(n):
        site.pool.share(f"bench:cam{i}", sink)
    result = site.run()
    if result.errors:
        raise ConfigError(f"bench: a stream failed: {next(iter(result.errors.values()))}")
    lat = sorted(v for vs in sink.latency_s.values() for v in vs)
    per_cam = {cam: sink.fps([cam]) for cam in result.cameras}
    return {
        "streams": n, "batching": max_batch > 1, "max_batch": max_batch,
        "aggregate_fps": sink.fps(list(result.cameras)), "frames": result.frames_out,
        "wall_s": round(result.seconds, 3),
        "per_camera_fps": per_cam,
        "per_camera_fps_min": min(per_cam.values()) if per_cam else 0.0,
        "latency_ms": {"mean": round(1000 * sum(lat) / len(lat), 1) if lat else 0.0,
                       "p50": round(1000 * lat[len(lat) // 2], 1) if lat else 0.0,
                       "p95": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1) if lat else 0.0},
        "frames_per_call": round(result.batched_frames / result.batches, 2) if result.batches else 0.0,
    }


def bench_streams(model: str = "fast", backend: str = "torch", device: str | None = None, *,
                  streams: list[int] = (1, 2, 4, 8), size: tuple[int, int] = (640, 360),  # type: ignore[assignment]
                  frames: int = 30, threads: int = 0, arch: str | None = None,
                  clip: str | Path | None = None, max_batch: int = 8,
                  timeout_ms: float = 20.0, int8: bool | str = False, inflight: int = 1) -> dict[str, Any]:
    """N cameras (the same clip N times, no drops, null sinks) through one site, each N once
    without batching (one frame per network call) and once with; the ``streams`` JSON section.

    Latency is capture->output at full load (files are read as fast as the site takes them,
    2-frame queues), so it shows queueing as well as the network.
    """
    import torch

    src = _bench_clip(clip, frames)
    device = resolve_device(device, backend)  # the report names where it ran
    report: dict[str, Any] = {"schema": SCHEMA, "model": model, "backend": backend, "device": device,
                              "int8": int8, "inflight": inflight}
    with tempfile.TemporaryDirectory(prefix="streamer-bench-") as tmp:
        clip_path = Path(tmp) / "clip.mp4"
        report["clip"] = make_clip(src, clip_path, size, frames)
        args = ({"name": model, "arch": arch}, {"kind": backend, "device": device, "threads": threads,
                                                "int8": int8, "inflight": inflight})
        _streams_once(clip_path, 1, 1, 0.0, *args)  # warm-up: first calls build kernels
        results = []
        for n in streams:
            for batch in (1, min(n, max_batch)) if n > 1 and max_batch > 1 else (1,):
                results.append(_streams_once(clip_path, n, batch, timeout_ms, *args))
    report["streams"] = {"frames_per_camera": frames, "batch_timeout_ms": timeout_ms,
                         "sink": "null (latency recorded at the sink)", "results": results}
    report["threads"] = {"network": threads, "torch": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    report["versions"] = versions()
    report["host"] = host()
    return report
