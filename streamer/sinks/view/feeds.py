"""Latest frame per camera, JPEG-encoded on demand and shared by every viewer.

The pipeline thread only stores a reference (``put`` is O(1): the sink must never slow the run).
Encoding happens in the server's worker threads when a viewer asks, at most once per frame and
variant, so nobody watching costs nothing and ten viewers cost one encode. A viewer always gets
the newest frame: frames that arrive while it is still sending are skipped, never queued. That
holds for both transports: an MJPEG stream (one per camera and variant) and the page's WebSocket
(one per page, carrying the streams it shows), which waits on several feeds at once (``watch``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from streamer.frame import Frame
from streamer.stats import RateMeter

VARIANTS = ("clean", "original")


@dataclass(frozen=True, slots=True)
class Jpeg:
    seq: int
    data: bytes
    captured_s: float


class CameraFeed:
    """One camera's newest frame plus its cached JPEGs; ``put`` from any thread."""

    def __init__(self, name: str, quality: int) -> None:
        self.name = name
        self._quality = quality
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self.seq = 0
        self._cache: dict[str, Jpeg] = {}
        self._encode_locks = {v: threading.Lock() for v in VARIANTS}
        self._event: asyncio.Event | None = None  # created and used on the server loop only
        self._watchers: set[asyncio.Event] = set()  # server loop only: WebSocket pages showing this camera
        self.viewers = 0  # server loop only: open MJPEG streams + pages showing this camera
        self.display_latency_ms = 0.0  # capture -> JPEG handed to the socket, smoothed
        self.sent = 0
        self._rate = RateMeter()  # frames reaching the sink (the panel's fallback without stats)
        self._last_put_s = 0.0

    def put(self, frame: Frame) -> None:
        now = time.monotonic()
        with self._lock:
            self._frame = frame
            self.seq += 1
            self._rate.tick(now)
            self._last_put_s = now

    @property
    def fps(self) -> float:
        return self._rate.rate()

    @property
    def age_s(self) -> float:
        """Seconds since the last frame reached the sink (inf before the first)."""
        return time.monotonic() - self._last_put_s if self._last_put_s else float("inf")

    @property
    def size(self) -> tuple[int, int]:
        frame = self._frame
        return (frame.width, frame.height) if frame is not None else (0, 0)

    @property
    def has_original(self) -> bool:
        frame = self._frame
        return frame is not None and frame.original is not None

    def jpeg(self, variant: str) -> Jpeg | None:
        """The newest frame as JPEG; blocking (cv2), so the server calls it in a worker thread."""
        with self._encode_locks[variant]:
            with self._lock:
                frame, seq = self._frame, self.seq
            if frame is None:
                return None
            cached = self._cache.get(variant)
            if cached is not None and cached.seq == seq:
                return cached
            image = frame.original if variant == "original" and frame.original is not None else frame.image
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, self._quality])
            if not ok:
                return None
            jpeg = Jpeg(seq, buf.tobytes(), frame.captured_s)
            self._cache[variant] = jpeg
            return jpeg

    # --- server loop side -------------------------------------------------------------------
    def notify(self) -> None:
        """Wake every viewer waiting for a newer frame (runs on the server loop)."""
        event, self._event = self._event, None
        if event is not None:
            event.set()
        for watcher in self._watchers:
            watcher.set()

    def watch(self, wake: asyncio.Event) -> None:
        """A page shows this camera: ``wake`` is set on every new frame until ``unwatch``; it
        counts as one viewer however many of the camera's variants it shows."""
        if wake not in self._watchers:
            self._watchers.add(wake)
            self.viewers += 1

    def unwatch(self, wake: asyncio.Event) -> None:
        if wake in self._watchers:
            self._watchers.discard(wake)
            self.viewers -= 1

    async def wait_newer(self, seen: int, timeout_s: float) -> None:
        """Return once ``seq`` moved past ``seen`` or after ``timeout_s`` (so closing is noticed)."""
        if self.seq != seen:
            return
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    def on_sent(self, jpeg: Jpeg) -> None:
        self.sent += 1
        if jpeg.captured_s:
            ms = 1000.0 * (time.monotonic() - jpeg.captured_s)
            self.display_latency_ms = 0.9 * self.display_latency_ms + 0.1 * ms if self.display_latency_ms else ms


class FeedHub:
    """All cameras the sink has seen; wakes the server loop only when someone watches."""

    def __init__(self, quality: int) -> None:
        self._quality = quality
        self._lock = threading.Lock()
        self._feeds: dict[str, CameraFeed] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def put(self, frame: Frame) -> None:
        with self._lock:
            feed = self._feeds.get(frame.source)
            if feed is None:
                feed = self._feeds[frame.source] = CameraFeed(frame.source, self._quality)
        feed.put(frame)
        loop = self.loop
        if feed.viewers and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(feed.notify)
            except RuntimeError:  # loop closed between the check and the call
                pass

    def get(self, name: str) -> CameraFeed | None:
        with self._lock:
            return self._feeds.get(name)

    def feeds(self) -> list[CameraFeed]:
        with self._lock:
            return list(self._feeds.values())
