"""The sinks of a run's cameras, sharing whatever listens on a port.

A port can be bound once, so sinks that listen are keyed by what they listen on, not by how the
spec is written (`view:8093` and `view://127.0.0.1:8093` are one server): one ``view`` per
host:port shows every camera (a grid); one RTSP server per host:port serves a mount per path
(`rtsp-serve://127.0.0.1:8554/{camera}`: one server, a path per camera). Everything else is each
camera's own.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

from streamer.config import EncoderConfig, SinkConfig, sink_kind
from streamer.sinks.base import Sink, close_sinks, write_order
from streamer.stats import RunStats


def listen_key(spec: str) -> Hashable:
    """(kind, host, port) for a sink that listens (view, rtsp-serve); else the spec itself."""
    kind = sink_kind(spec)
    if kind == "view":
        from streamer.sinks.view import parse_view_spec

        return ("view", *parse_view_spec(spec))
    if kind == "rtsp-serve":
        from streamer.sinks.rtsp_serve import parse_url

        return ("rtsp-serve", *parse_url(spec)[:2])  # as the config's check compares (stream_target)
    return spec


class SinkPool:
    """Opens each camera's sinks; a ``view`` (per host:port) is opened once and shared by all
    cameras, an RTSP server (per host:port) is shared with a mount per path."""

    def __init__(self, encoder: EncoderConfig, stats: RunStats | None = None) -> None:
        self.encoder, self.stats = encoder, stats
        self._shared: dict[Hashable, Sink] = {}
        self._specs: dict[str, Hashable] = {}  # every spec written for a shared sink -> its key
        self._servers: dict[Hashable, Any] = {}  # rtsp-serve host:port -> RtspServer
        self._owned: list[Sink] = []

    def open(self, sinks: list[SinkConfig], fps: float, audio_from: str | Path | None = None) -> list[Sink]:
        """One camera's sinks, in write order; a shared one appears once however often it is named."""
        from streamer.sinks import open_sink

        out: list[Sink] = []
        for sc in sinks:
            key = listen_key(sc.url)
            if key in self._shared:
                self._specs.setdefault(sc.url, key)
                if self._shared[key] not in out:
                    out.append(self._shared[key])
                continue
            options: dict[str, Any] = {}
            if sc.kind == "rtsp-serve":
                options["server"] = self._server(key)
            sink = open_sink(sc.url, encoder=self.encoder, side_by_side=sc.side_by_side, fps=fps,
                             stats=self.stats, segment_s=sc.segment_s, keep=sc.keep, audio_from=audio_from,
                             **options)
            if sc.kind == "view":
                self.share(sc.url, sink)
            else:
                self._owned.append(sink)
            out.append(sink)
        return write_order(out)

    def _server(self, key: Hashable) -> Any:
        """The RTSP server listening on ``key``'s host:port, started by its first sink."""
        from streamer.sinks.rtsp_serve import RtspServer

        server = self._servers.get(key)
        if server is None or server.closed:
            _, host, port = key  # type: ignore[misc]
            server = self._servers[key] = RtspServer(host, port)
        return server

    @property
    def shared(self) -> dict[str, Sink]:
        """Sinks serving several cameras, under each spec that named them (e.g. the one ``view``)."""
        return {spec: self._shared[key] for spec, key in self._specs.items() if key in self._shared}

    def share(self, spec: str, sink: Sink) -> None:
        """Serve cameras whose sinks name ``spec`` (or the same host:port) with this one instance
        (benchmarks, embedding)."""
        key = listen_key(spec)
        self._shared[key] = sink
        self._specs[spec] = key

    def close(self) -> tuple[list[Exception], bool]:
        """Close every sink once (cameras' own first, shared last; an RTSP server stops with its
        last mount); returns the errors and whether Ctrl-C came meanwhile (``close_sinks``: an
        interrupted close is retried)."""
        errors: list[Exception] = []
        interrupted = close_sinks([*self._owned, *self._shared.values(), *self._servers.values()], errors.append)
        return errors, interrupted
