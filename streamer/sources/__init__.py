"""Where frames come from: ``open_source`` picks the implementation from the spec string."""

from __future__ import annotations

from typing import Any

from streamer.config import ReconnectConfig, SourceConfig
from streamer.errors import ConfigError
from streamer.shipped import shipped
from streamer.sources.base import Source
from streamer.stats import RunStats


def open_source(spec: str, name: str = "main", *, loop: bool = False, realtime: bool = False,
                timeout_s: float = 5.0, reconnect: ReconnectConfig | None = None,
                stats: RunStats | None = None, size: str | None = None, fps: float | None = None,
                input_format: str | None = None) -> Source:
    """``rtsp://`` -> RTSP camera, ``/dev/videoN`` or ``/dev/v4l/by-id/…`` -> V4L2 camera, else a file."""
    live: dict[str, Any] = {"timeout_s": timeout_s, "reconnect": reconnect, "stats": stats}
    if spec.startswith(("rtsp://", "rtsps://")):
        from streamer.sources.rtsp import RtspSource

        return RtspSource(spec, name, **live)
    if spec.startswith(("/dev/video", "/dev/v4l/")):  # by-id/by-path links survive re-enumeration
        from streamer.sources.usb import UsbSource

        return UsbSource(spec, name, size=size, fps=fps, input_format=input_format, **live)
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise ConfigError(f"source {spec!r}: unsupported scheme {scheme!r}; use a file path, "
                          "rtsp://… or /dev/videoN")
    from streamer.sources.file import FileSource

    return FileSource(shipped(spec), name, loop=loop, realtime=realtime)  # assets/demo.mp4 from anywhere


def reports_up(source: Source) -> bool:
    """Whether ``source`` reports its own up/down state (cameras: on connect, loss, reconnect).
    Files, paced like a camera or not, do not: the pipeline marks them up when capture starts,
    or the live view's /healthz would call a looping demo clip "down" forever."""
    return bool(getattr(source, "live", False)) and getattr(source, "stats", None) is not None


def source_from_config(cfg: SourceConfig, stats: RunStats | None = None) -> Source:
    return open_source(cfg.url, cfg.name, loop=cfg.loop, realtime=cfg.realtime,
                       timeout_s=cfg.timeout_s, reconnect=cfg.reconnect, stats=stats,
                       size=cfg.size, fps=cfg.fps, input_format=cfg.input_format)


__all__ = ["Source", "open_source", "reports_up", "source_from_config"]
