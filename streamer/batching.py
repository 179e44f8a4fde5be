"""Cross-camera batching, like DeepStream's stream muxer: one network call for several cameras.

``Muxer`` holds one small input queue per camera under a single condition variable, so one
batcher thread can wait on all of them. ``take`` returns at most one frame per camera (order
within a camera is kept, no camera can starve the others), once ``max_batch`` cameras have a
frame or ``timeout_s`` after the first one arrived, whichever comes first. Live cameras drop
their oldest queued frame when full (latest frame wins); files wait for room, never drop.

``BatchRestorer`` runs such a batch: frames of equal size after resizing become one
N×3×H×W array and one backend call (several when the backend takes fewer, e.g. an export with a
fixed size takes one); other sizes get their own call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from streamer.backends.base import Backend
from streamer.frame import Frame
from streamer.preprocess.color import from_batch, to_batch
from streamer.preprocess.frames import plan_calls
from streamer.preprocess.resize import resize
from streamer.preprocess.tiles import run_padded

StageTimer = Callable[[str, str, float], None]  # (camera, stage, seconds)


@dataclass(eq=False)
class Lane:
    """One camera's place in the muxer: its queue and whether it still delivers."""

    name: str
    live: bool
    capacity: int
    keep_original: bool = False
    frames: deque = field(default_factory=deque)
    ended: bool = False  # capture finished; frames still queued go through
    closed: bool = False  # output finished or failed: queued and later frames are discarded


class Muxer:
    """Per-camera bounded queues behind one lock; ``take`` forms batches (see module doc)."""

    def __init__(self, lanes: list[Lane], stop: threading.Event) -> None:
        self.lanes = lanes
        self.stop = stop
        self._cond = threading.Condition()
        self._next = 0  # round-robin start, so a full batch does not always favour camera 0

    def put(self, lane: Lane, frame: Frame) -> int:
        """Queue ``frame``; returns how many old frames were dropped (live lanes only)."""
        with self._cond:
            dropped = 0
            if lane.live:
                while len(lane.frames) >= lane.capacity:
                    lane.frames.popleft()
                    dropped += 1
            else:
                while len(lane.frames) >= lane.capacity and not (lane.closed or self.stop.is_set()):
                    self._cond.wait(0.1)
            if not lane.closed:
                lane.frames.append(frame)
            self._cond.notify_all()
            return dropped

    def end(self, lane: Lane) -> None:
        with self._cond:
            lane.ended = True
            self._cond.notify_all()

    def close(self, lane: Lane) -> None:
        """Drop what is queued for ``lane`` and refuse more (its output is gone)."""
        with self._cond:
            lane.closed = True
            lane.frames.clear()
            self._cond.notify_all()

    def _active(self) -> int:
        return sum(1 for ln in self.lanes if not ln.closed and (ln.frames or not ln.ended))

    def take(self, max_batch: int, timeout_s: float) -> list[tuple[Lane, Frame]] | None:
        """Up to ``max_batch`` frames, one per camera; None once every lane is finished or stop."""
        with self._cond:
            while not any(ln.frames for ln in self.lanes):
                if self.stop.is_set() or not self._active():
                    return None
                self._cond.wait(0.1)
            deadline = time.monotonic() + timeout_s
            while not self.stop.is_set():
                ready = sum(1 for ln in self.lanes if ln.frames)
                left = deadline - time.monotonic()
                if ready >= min(max_batch, self._active()) or left <= 0:
                    break
                self._cond.wait(left)
            n = len(self.lanes)
            order = [self.lanes[(self._next + i) % n] for i in range(n)]
            self._next = (self._next + 1) % n
            batch = [(ln, ln.frames.popleft()) for ln in [ln for ln in order if ln.frames][:max_batch]]
            self._cond.notify_all()  # room for file captures waiting in put
            return batch

    def finished(self) -> list[Lane]:
        """Lanes whose capture ended and whose queue is empty (their output can be told so)."""
        with self._cond:
            return [ln for ln in self.lanes if ln.ended and not ln.frames]


class BatchRestorer:
    """Resize, batch frames of equal size, one backend call per size (up to ``max_batch``
    frames each), split back into frames.

    Stage seconds are shared out evenly over the frames of a call, so per-camera histograms
    show each frame's cost with batching included.
    """

    def __init__(self, backend: Backend | None, *, size: tuple[int, int] | None = None,
                 tile: int = 0, overlap: int = 32) -> None:
        self.backend = backend
        self.size = size
        calls = plan_calls(backend, tile, overlap)  # FrameRestorer's: fixed-size exports take 1 frame
        self.multiple, self.tiler = calls.multiple, calls.tiler
        self.max_batch = calls.max_batch  # frames per call, 0 = any; the site takes no more
        self.calls = 0  # backend calls made (for batching statistics)

    def __call__(self, items: list[tuple[Lane, Frame]], timer: StageTimer | None = None) -> list[Frame]:
        t0 = time.perf_counter()
        images = [resize(f.image, self.size) if self.size else f.image for _, f in items]
        t_pre = time.perf_counter() - t0
        outs: list[np.ndarray | None] = list(images) if self.backend is None else [None] * len(images)
        t_net = t_post = 0.0
        if self.backend is not None:
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, img in enumerate(images):
                by_shape.setdefault(img.shape, []).append(i)
            step = self.max_batch or len(images)
            for idx in (same[i:i + step] for same in by_shape.values() for i in range(0, len(same), step)):
                t1 = time.perf_counter()
                batch = to_batch([images[i] for i in idx])
                t2 = time.perf_counter()
                out = (self.tiler(self.backend, batch) if self.tiler is not None
                       else run_padded(self.backend, batch, self.multiple))
                t3 = time.perf_counter()
                for i, img in zip(idx, from_batch(out)):
                    outs[i] = img
                self.calls += 1
                t_pre += t2 - t1
                t_net += t3 - t2
                t_post += time.perf_counter() - t3
        n = len(items)
        if timer is not None:
            for lane, _ in items:
                timer(lane.name, "preprocess", t_pre / n)
                timer(lane.name, "network", t_net / n)
                timer(lane.name, "postprocess", t_post / n)
        return [replace(f, image=out, original=img if lane.keep_original else None)
                for (lane, f), out, img in zip(items, outs, images)]
