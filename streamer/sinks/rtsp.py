"""Push H.264 to an RTSP server (``ANNOUNCE``/``RECORD`` over TCP), e.g. mediamtx.

Serving RTSP ourselves is ``rtsp-serve://`` (another sink). If the server goes away, frames
are dropped (counted in ``stats`` for the frame's camera: run summary, /metrics) and the
connection is retried with capped backoff; the run goes on.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from typing import Any

import av

from streamer.config import EncoderConfig, ReconnectConfig
from streamer.errors import SinkError
from streamer.frame import Frame
from streamer.sinks.encode import VideoEncoder, compose
from streamer.sources.live import Backoff, redact
from streamer.stats import RunStats

log = logging.getLogger(__name__)
TIME_BASE = Fraction(1, 90000)


class RtspSink:
    def __init__(self, url: str, *, encoder: EncoderConfig | None = None, side_by_side: bool = False,
                 fps: float = 0.0, reconnect: ReconnectConfig | None = None,
                 timeout_s: float = 5.0, stats: RunStats | None = None) -> None:
        self.url = url
        self.encoder_cfg = encoder or EncoderConfig()
        self.side_by_side = side_by_side
        self.fps = fps
        self.timeout_s = timeout_s
        self.stats = stats
        self.backoff = Backoff(reconnect or ReconnectConfig(max_attempts=0))
        self.frames = 0
        self.dropped = 0
        self.ever_up = False
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
                if self.ever_up:
                    log.info("%s: RTSP output back", redact(self.url))
            self._video.encode(image, frame.pts_s - self._t0)  # type: ignore[union-attr]
            self.ever_up = True  # the connection is made on the first packet, not at open
            self.backoff.reset()
            self.frames += 1
        except (av.FFmpegError, OSError) as exc:
            error = getattr(exc, "strerror", None) or str(exc)
            self._drop_connection()
            if not self.ever_up:
                raise SinkError(f"{redact(self.url)}: cannot push RTSP ({error}); check that the "
                                "server runs and accepts publishing on this path") from exc
            delay = self.backoff.next_delay_s() or self.backoff.cfg.max_s
            log.warning("%s: RTSP output lost (%s); retry in %.1f s, attempt %d",
                        redact(self.url), error, delay, self.backoff.attempt)
            self._retry_at = time.monotonic() + delay
            self._drop(frame)

    def _drop(self, frame: Frame) -> None:
        self.dropped += 1
        if self.stats is not None:
            self.stats.on_drop(frame.source)

    def _drop_connection(self) -> None:
        container, self._container, self._video = self._container, None, None
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
