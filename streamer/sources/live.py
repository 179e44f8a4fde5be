"""Shared reconnect loop of live sources (RTSP, USB): a lost camera is reopened with capped
exponential backoff and the iteration goes on; frames keep increasing PTS across reconnects."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Iterator

import av

from streamer.config import ReconnectConfig
from streamer.errors import SourceError
from streamer.frame import Frame
from streamer.stats import RunStats

log = logging.getLogger(__name__)

LIVE_TIME_BASE = (1, 90000)  # one time base for every connection, so sinks see one clock


def redact(url: str) -> str:
    """Hide a password in ``rtsp://user:pass@host`` before it reaches a log or an error."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


class Backoff:
    """initial, initial*factor, ... capped at max_s; ``None`` once max_attempts are used up."""

    def __init__(self, cfg: ReconnectConfig) -> None:
        self.cfg = cfg
        self.attempt = 0

    def next_delay_s(self) -> float | None:
        self.attempt += 1
        if self.cfg.max_attempts and self.attempt > self.cfg.max_attempts:
            return None
        return min(self.cfg.initial_s * self.cfg.factor ** (self.attempt - 1), self.cfg.max_s)

    def reset(self) -> None:
        self.attempt = 0


def _decoded(container: Any, stream: Any) -> Iterator[tuple[Any, float]]:
    """``container.decode(stream)`` with the seconds each frame took to decode: reading the next
    packet (waiting on the camera) is left out, so the `decode` stage is decoding only. A packet
    that gives no frame yet adds its time to the next frame's."""
    spent_s = 0.0
    for packet in container.demux(stream):
        t0 = time.perf_counter()
        frames = packet.decode()
        spent_s += time.perf_counter() - t0
        for frame in frames:
            yield frame, spent_s
            spent_s = 0.0


class LiveSource:
    """Base of cameras: subclasses say how to open the container (``_open``)."""

    live = True
    kind = "camera"

    def __init__(self, url: str, name: str = "main", *, timeout_s: float = 5.0,
                 reconnect: ReconnectConfig | None = None, stats: RunStats | None = None) -> None:
        self.url = url
        self.name = name
        self.timeout_s = timeout_s
        self.reconnect = reconnect or ReconnectConfig()
        self.stats = stats
        self.total_frames = None
        self._closed = threading.Event()

    def _open(self) -> Any:  # av container
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        backoff = Backoff(self.reconnect)
        ever_up = False
        index = 0
        base_s = 0.0  # output PTS where this connection starts
        last_out_s: float | None = None
        last_wall_s = 0.0
        while not self._closed.is_set():
            error = "stream ended"
            attempt_s, opened = time.monotonic(), False
            try:
                with self._open() as container:
                    opened = True
                    if not container.streams.video:
                        raise SourceError(f"{redact(self.url)}: {self.kind} sends no video stream")
                    stream = container.streams.video[0]
                    if stream.codec_context is None:
                        raise SourceError(f"{redact(self.url)}: {self.kind} sends video in a codec "
                                          "this FFmpeg cannot decode; set the camera to H.264 or H.265")
                    stream.thread_type = "AUTO"
                    first_s: float | None = None
                    t_s = 0.0
                    step_s = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
                    for frame, spent_s in _decoded(container, stream):
                        now = time.monotonic()
                        # RTSP's first frames may lack a timestamp: continue the stream clock
                        t_s = frame.time if frame.time is not None else t_s + step_s
                        if first_s is None:
                            first_s = t_s
                            if last_out_s is not None:  # continue the clock over the outage
                                base_s = last_out_s + max(now - last_wall_s, 1e-3)
                            self._on_up(reconnected=ever_up)
                            ever_up = True
                            backoff.reset()
                        out_s = base_s + max(t_s - first_s, 0.0)
                        if last_out_s is not None and out_s <= last_out_s:
                            out_s = last_out_s + 1e-3  # never backwards, whatever the camera says
                        last_out_s = out_s
                        last_wall_s = now
                        t0 = time.perf_counter()
                        image = frame.to_ndarray(format="rgb24")
                        yield Frame(image, last_out_s, index, self.name, LIVE_TIME_BASE, now,
                                    decode_s=spent_s + time.perf_counter() - t0)
                        index += 1
                        if self._closed.is_set():
                            return
            except (av.FFmpegError, OSError) as exc:
                error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                if not opened and time.monotonic() - attempt_s >= 0.9 * self.timeout_s:
                    # a server that takes the connection and then says nothing: FFmpeg gives up
                    # with a misleading "Invalid data found when processing input"
                    error = f"no answer within {self.timeout_s:g} s: {error}"
            if self._closed.is_set():
                return
            if self.stats:
                self.stats.on_up(self.name, False, error)
            if not ever_up and not self.reconnect.retry_first_connect:
                raise SourceError(f"{redact(self.url)}: cannot open {self.kind} ({error}); check the "
                                  "address and that it is on, or set source.reconnect.retry_first_connect")
            delay = backoff.next_delay_s()
            state = "lost" if ever_up else "not reached yet"  # retry_first_connect: never up so far
            if delay is None:
                raise SourceError(f"{redact(self.url)}: {self.kind} {state} ({error}); gave up after "
                                  f"{self.reconnect.max_attempts} attempts (source.reconnect.max_attempts)")
            log.warning("%s: %s %s at %s (%s); retry in %.1f s, attempt %d", self.name, self.kind, state,
                        redact(self.url), error, delay, backoff.attempt)
            if self._closed.wait(delay):
                return

    def _on_up(self, reconnected: bool) -> None:
        if reconnected:
            log.info("%s: %s back", self.name, self.kind)
        if self.stats:
            self.stats.on_up(self.name, True)
            if reconnected:
                self.stats.on_reconnect(self.name)

    def close(self) -> None:
        self._closed.set()
