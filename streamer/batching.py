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
from typing import Any, Callable

import numpy as np

from streamer.backends.base import Backend
from streamer.frame import Frame
from streamer.preprocess.color import from_batch, to_batch
from streamer.preprocess.frames import plan_calls
from streamer.preprocess.resize import resize
from streamer.preprocess.tiles import pad_image_to_multiple, run_padded

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

    def take(self, max_batch: int, timeout_s: float, *, wait: bool = True) -> list[tuple[Lane, Frame]] | None:
        """Up to ``max_batch`` frames, one per camera; None once every lane is finished or stop.
        ``wait=False``: only what is queued now, ``[]`` if nothing (the batcher has a batch in the
        network to finish meanwhile)."""
        with self._cond:
            while not any(ln.frames for ln in self.lanes):
                if self.stop.is_set() or not self._active():
                    return None
                if not wait:
                    return []
                self._cond.wait(0.1)
            deadline = time.monotonic() + (timeout_s if wait else 0.0)
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


@dataclass(eq=False)
class Call:
    """One backend call of a batch: which of its frames, the uint8 path's handle, the result."""

    idx: list[int]
    handle: Any = None
    out: np.ndarray | None = None  # N×H×W×3 uint8, padded to the multiple, once waited for
    done_s: float = 0.0  # perf_counter() when its wait returned


@dataclass(eq=False)
class Batch:
    """A submitted batch; ``BatchRestorer.finish`` turns it into frames, in submission order."""

    items: list[tuple[Lane, Frame]]
    images: list[np.ndarray]  # resized, before the network
    outs: list[np.ndarray | None]
    calls: list[Call] = field(default_factory=list)
    t_pre: float = 0.0
    t_net: float = 0.0
    t_post: float = 0.0
    t_started: float = 0.0  # uint8 path: first call started

    @property
    def lanes(self) -> list[Lane]:
        return [lane for lane, _ in self.items]


class BatchRestorer:
    """Resize, batch frames of equal size, one backend call per size (up to ``max_batch``
    frames each), split back into frames.

    Backends with ``uint8_io`` (OpenVINO; torch and TensorRT on CUDA) get uint8 frames, as from
    ``FrameRestorer``: the colour conversion runs in the network or on the GPU, and ``depth``
    batches may be in the network at once (``submit``/``finish``). At most ``inflight`` calls are
    started and not waited for (each slot's buffers are reused by the call ``inflight`` later).
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
        self.uint8 = self.tiler is None and bool(getattr(backend, "uint8_io", False))
        self.calls = 0  # backend calls made (for batching statistics)
        self._started: deque[Call] = deque()  # uint8 calls not waited for, oldest first

    @property
    def depth(self) -> int:
        """Batches the site may have in flight here (>1 only on the uint8 path with ``inflight``)."""
        return max(1, int(getattr(self.backend, "inflight", 1))) if self.uint8 else 1

    def __call__(self, items: list[tuple[Lane, Frame]], timer: StageTimer | None = None) -> list[Frame]:
        return self.finish(self.submit(items), timer)

    def submit(self, items: list[tuple[Lane, Frame]]) -> Batch:
        """Start ``items`` through the network (the float path runs it to the end here)."""
        t0 = time.perf_counter()
        images = [resize(f.image, self.size) if self.size else f.image for _, f in items]
        batch = Batch(items, images, list(images) if self.backend is None else [None] * len(images),
                      t_pre=time.perf_counter() - t0)
        if self.backend is None:
            return batch
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            by_shape.setdefault(img.shape, []).append(i)
        step = self.max_batch or len(images)
        for idx in (same[i:i + step] for same in by_shape.values() for i in range(0, len(same), step)):
            self.calls += 1
            if self.uint8:
                self._start(batch, idx)
                continue
            t1 = time.perf_counter()
            floats = to_batch([images[i] for i in idx])
            t2 = time.perf_counter()
            out = (self.tiler(self.backend, floats) if self.tiler is not None
                   else run_padded(self.backend, floats, self.multiple))
            t3 = time.perf_counter()
            for i, img in zip(idx, from_batch(out)):
                batch.outs[i] = img
            batch.t_pre += t2 - t1
            batch.t_net += t3 - t2
            batch.t_post += time.perf_counter() - t3
        return batch

    def _start(self, batch: Batch, idx: list[int]) -> None:
        while len(self._started) >= self.depth:  # a slot is free once its call is waited for
            self._wait_oldest()
        t0 = time.perf_counter()
        padded = np.stack([pad_image_to_multiple(batch.images[i], self.multiple) for i in idx])
        t1 = time.perf_counter()
        call = Call(idx, self.backend.start_uint8(padded))  # type: ignore[union-attr]
        batch.t_pre += t1 - t0
        batch.t_started = batch.t_started or t1
        batch.calls.append(call)
        self._started.append(call)

    def _wait_oldest(self) -> None:
        call = self._started.popleft()  # handles are waited for in the order they were started
        call.out = self.backend.wait_uint8(call.handle)  # type: ignore[union-attr]
        call.handle = None
        call.done_s = time.perf_counter()

    def drain(self) -> None:
        """Wait for every call started and not waited for, dropping the results: the backend may
        be closed next (OpenVINO frees its compiled models) and must not be running them."""
        while self._started:
            try:
                self._wait_oldest()
            except Exception:  # noqa: BLE001  a failed call is not running either; the error that
                pass  # stopped the batcher (if any) is already reported

    def finish(self, batch: Batch, timer: StageTimer | None = None) -> list[Frame]:
        """The cleaned frames of ``batch``, in its order; batches finish in the order submitted."""
        if batch.calls:
            for call in batch.calls:
                while call.out is None:
                    self._wait_oldest()
            t0 = time.perf_counter()
            # start to result as FrameRestorer.finish: when its last call's wait returned, not
            # when the batcher got to finishing it
            batch.t_net += max(call.done_s for call in batch.calls) - batch.t_started
            for call in batch.calls:
                for i, out in zip(call.idx, call.out):  # type: ignore[arg-type]
                    h, w = batch.images[i].shape[:2]
                    batch.outs[i] = out if out.shape[:2] == (h, w) else np.ascontiguousarray(out[:h, :w])
            batch.t_post += time.perf_counter() - t0
        n = len(batch.items)
        if timer is not None:
            for lane, _ in batch.items:
                timer(lane.name, "preprocess", batch.t_pre / n)
                timer(lane.name, "network", batch.t_net / n)
                timer(lane.name, "postprocess", batch.t_post / n)
        return [replace(f, image=out, original=img if lane.keep_original else None)
                for (lane, f), out, img in zip(batch.items, batch.outs, batch.images)]
