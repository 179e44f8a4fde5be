"""Push H.264 to an RTSP server (``ANNOUNCE``/``RECORD`` over TCP), e.g. mediamtx.

Serving RTSP ourselves is ``rtsp-serve://`` (another sink). A live output never stops the run:
if the server is not there at start or goes away later, frames are dropped (counted in ``stats``
for the frame's camera: run summary, /metrics) and the connection is retried with capped
backoff while the other sinks (a recording) go on; reconnects after a loss are counted in
``streamer_sink_reconnects_total``. FFmpeg connects on the first packet, not at open, so the
output counts as up once a packet went out. Only a URL that cannot be right is an error.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av

from streamer.config import EncoderConfig, ReconnectConfig
from streamer.errors import ConfigError
from streamer.frame import Frame
from streamer.sinks.encode import VideoEncoder, compose
from streamer.sources.live import Backoff, redact
from streamer.stats import RunStats

log = logging.getLogger(__name__)
TIME_BASE = Fraction(1, 90000)


def check_url(url: str) -> None:
    """Refuse what no server could take (retrying would only hide the typo)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname or port == -1 or parts.path in ("", "/"):
        raise ConfigError(f"sink {redact(url)!r}: expected rtsp://HOST[:PORT]/PATH, "
                          "e.g. rtsp://127.0.0.1:8554/clean")


class RtspSink:
    def __init__(self, url: str, *, encoder: EncoderConfig | None = None, side_by_side: bool = False,
                 fps: float = 0.0, reconnect: ReconnectConfig | None = None,
                 timeout_s: float = 5.0, stats: RunStats | None = None) -> None:
        check_url(url)
        self.url = url
        self.encoder_cfg = encoder or EncoderConfig()
        self.side_by_side = side_by_side
        self.fps = fps
        self.timeout_s = timeout_s
        self.stats = stats
        self.backoff = Backoff(reconnect or ReconnectConfig(max_attempts=0))
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0  # connections made again after a loss
        self.ever_up = False
        self._connected = False  # a packet went out on this connection
        self._container: Any = None
        self._video: VideoEncoder | None = None
        self._retry_at = 0.0
        self._t0: float | None = None

    def _open(self, width: int, height: int) -> None:
        us = str(int(self.timeout_s * 1e6))
        self._container = av.open(self.url, "w", format="rtsp",
                                  options={"rtsp_transport": "tcp", "timeout": us},
                                  timeout=(self.timeout_s, self.timeout_s))
        self._video = VideoEncoder(self._container, width, height, cfg=self.encoder_cfg,
                                   fps=self.fps or 25.0, time_base=TIME_BASE, low_latency=True)

    def write(self, frame: Frame) -> None:
        if time.monotonic() < self._retry_at:
            self._drop(frame)
            return
        image = compose(frame, self.side_by_side)
        if self._t0 is None:
            self._t0 = frame.pts_s
        try:
            if self._video is None:
                self._open(image.shape[1], image.shape[0])
            packets = self._video.encode(image, frame.pts_s - self._t0)  # type: ignore[union-attr]
        except (av.FFmpegError, OSError) as exc:
            self._lost(frame, getattr(exc, "strerror", None) or str(exc))
            return
        self.frames += 1
        if packets and not self._connected:  # FFmpeg connects on the first packet, not at open
            self._on_connected(frame.source)

    def _on_connected(self, camera: str) -> None:
        self._connected = True
        if self.backoff.attempt:  # after failed attempts: say so, once
            log.info("%s: RTSP output %s", redact(self.url), "back" if self.ever_up else "reached")
        if self.ever_up:
            self.reconnects += 1
            if self.stats is not None:
                self.stats.on_sink_reconnect(camera)
        self.ever_up = True
        self.backoff.reset()

    def _lost(self, frame: Frame, error: str) -> None:
        self._drop_connection()
        delay = self.backoff.next_delay_s() or self.backoff.cfg.max_s
        state = "lost" if self.ever_up else "not reached yet"
        log.warning("%s: RTSP output %s (%s); frames are dropped, retry in %.1f s, attempt %d",
                    redact(self.url), state, error, delay, self.backoff.attempt)
        self._retry_at = time.monotonic() + delay
        self._drop(frame)

    def _drop(self, frame: Frame) -> None:
        self.dropped += 1
        if self.stats is not None:
            self.stats.on_drop(frame.source)

    def _drop_connection(self) -> None:
        container, self._container, self._video = self._container, None, None
        self._connected = False
        if container is not None:
            try:
                container.close()
            except (av.FFmpegError, OSError):
                pass  # the server is already gone; nothing to flush to

    def close(self) -> None:
        if self._video is not None:
            try:
                self._video.flush()
            except (av.FFmpegError, OSError):
                pass
        self._drop_connection()
