"""Where cleaned frames go: ``open_sink`` picks the implementation from the spec string.

``view`` (web page) and ``rtsp-serve://`` (our own RTSP server) are imported only when used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from streamer.config import EncoderConfig, sink_kind
from streamer.errors import ConfigError, did_you_mean
from streamer.sinks.base import Sink
from streamer.stats import RunStats


def _lazy(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ConfigError(f"sink {what!r}: not available in this build ({module} is missing)") from exc


def open_sink(spec: str, *, encoder: EncoderConfig | None = None, side_by_side: bool = False,
              fps: float = 0.0, stats: RunStats | None = None, audio_from: str | Path | None = None,
              segment_s: float = 0.0, keep: int = 0, **options: Any) -> Sink:
    """``null``, ``view``, ``rtsp://`` (push), ``rtsp-serve://`` (serve), or a .mp4/.mkv path
    (``segment_s``: loop recording into files of that many seconds, the newest ``keep`` kept)."""
    kind = sink_kind(spec)
    if segment_s and kind != "file":
        raise ConfigError(f"sink {spec!r}: segment_s (loop recording) is for .mp4/.mkv files")
    if kind == "null":
        from streamer.sinks.null import NullSink

        return NullSink()
    if kind == "view":
        return _lazy("streamer.sinks.view", spec).open_view_sink(
            spec, encoder=encoder, side_by_side=side_by_side, fps=fps, stats=stats, **options)
    if kind == "rtsp-serve":
        return _lazy("streamer.sinks.rtsp_serve", spec).open_rtsp_serve_sink(
            spec, encoder=encoder, side_by_side=side_by_side, fps=fps, **options)
    if kind == "rtsp":
        from streamer.sinks.rtsp import RtspSink

        return RtspSink(spec, encoder=encoder, side_by_side=side_by_side, fps=fps, stats=stats)
    if kind == "scheme":
        raise ConfigError(f"sink {spec!r}: unsupported scheme; use a .mp4/.mkv path, rtsp://…, "
                          "rtsp-serve://…, view or null")
    if not Path(spec).suffix:  # `viewer`, `nul`, `out/cam`: neither a sink kind nor a video file
        hint = did_you_mean(spec, ["null", "view"])
        raise ConfigError(f"sink {spec!r}: {hint + ' ' if hint else ''}a sink is a .mp4/.mkv path, rtsp://…, rtsp-serve://…, "
                          "view or null")
    if segment_s:
        from streamer.sinks.segments import SegmentedFileSink

        return SegmentedFileSink(spec, segment_s, keep=keep, encoder=encoder, side_by_side=side_by_side, fps=fps)
    from streamer.sinks.file import FileSink

    return FileSink(spec, encoder=encoder, side_by_side=side_by_side, fps=fps, audio_from=audio_from)


__all__ = ["Sink", "open_sink"]
