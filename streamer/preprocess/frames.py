"""Frame -> batch -> backend -> Frame: the preprocess and postprocess stages around the network."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from streamer.backends.base import Backend
from streamer.frame import Frame
from streamer.preprocess.color import from_batch, to_batch
from streamer.preprocess.resize import resize
from streamer.preprocess.tiles import Tiler, pad_image_to_multiple, run_padded

StageTimer = Callable[[str, float], None]  # (stage, seconds)


@dataclass(frozen=True)
class Calls:
    """How frames reach a backend; one setup for ``FrameRestorer`` and ``BatchRestorer``."""

    multiple: int  # H and W padded to this
    max_batch: int  # frames or tiles per backend call; 0 = any
    tiler: Tiler | None


def plan_calls(backend: Backend | None, tile: int = 0, overlap: int = 32, *,
               even_tiles: bool = False) -> Calls:
    """An engine built for one shape (``export --size``) gets tiles of that shape and, its batch
    being fixed too (at 1), one frame or tile per call; a backend says so with ``max_batch``."""
    multiple = int(getattr(backend, "multiple", 1) or 1)
    fixed = getattr(backend, "input_hw", None)  # engines built for one shape
    if fixed and not tile:
        tile = max(fixed)
    max_batch = int(getattr(backend, "max_batch", 1 if fixed else 0) or 0)
    per_call = 1 if even_tiles else min(8, max_batch or 8)  # even tiles (big photos): bounded memory
    tiler = Tiler(tile, min(overlap, tile // 2), multiple, max_batch=per_call, even=even_tiles) if tile else None
    return Calls(multiple, max_batch, tiler)


class FrameRestorer:
    """Cleans one frame with ``backend``; reports preprocess/network/postprocess seconds."""

    def __init__(self, backend: Backend | None, *, size: tuple[int, int] | None = None,
                 tile: int = 0, overlap: int = 32, keep_original: bool = False,
                 even_tiles: bool = False) -> None:
        self.backend = backend  # None = passthrough (benchmarks, plumbing tests)
        self.size = size
        self.keep_original = keep_original
        calls = plan_calls(backend, tile, overlap, even_tiles=even_tiles)
        self.multiple, self.tiler = calls.multiple, calls.tiler
        # backends that take uint8 frames and convert inside the network or on the GPU say so
        # with ``uint8_io`` (base.Backend); tiles take the float path
        self.uint8 = self.tiler is None and bool(getattr(backend, "uint8_io", False))
        self._buf: np.ndarray | None = None

    @property
    def depth(self) -> int:
        """Frames the pipeline may have in flight here: the backend's ``inflight`` on the uint8
        path (OpenVINO, torch on CUDA, TensorRT), else 1; use ``submit``/``finish`` then."""
        return int(getattr(self.backend, "inflight", 1)) if self.uint8 else 1

    def submit(self, frame: Frame, timer: StageTimer | None = None) -> tuple:
        """Start cleaning ``frame`` (uint8 backends); ``finish`` the handles in the same order."""
        t0 = time.perf_counter()
        image = resize(frame.image, self.size) if self.size else frame.image
        padded = pad_image_to_multiple(image, self.multiple)
        t1 = time.perf_counter()
        if timer is not None:
            timer("preprocess", t1 - t0)
        return frame, image, self.backend.start_uint8(padded[None]), t1  # type: ignore[union-attr]

    def finish(self, pending: tuple, timer: StageTimer | None = None) -> Frame:
        """The cleaned frame of a ``submit`` handle (network time = start to result)."""
        frame, image, handle, t1 = pending
        out_image = self.backend.wait_uint8(handle)[0]  # type: ignore[union-attr]
        if out_image.shape != image.shape:
            out_image = np.ascontiguousarray(out_image[:image.shape[0], :image.shape[1]])
        if timer is not None:
            timer("network", time.perf_counter() - t1)
            timer("postprocess", 0.0)
        return replace(frame, image=out_image, original=image if self.keep_original else None)

    def __call__(self, frame: Frame, timer: StageTimer | None = None) -> Frame:
        if self.uint8:
            return self.finish(self.submit(frame, timer), timer)
        t0 = time.perf_counter()
        image = resize(frame.image, self.size) if self.size else frame.image
        if self.backend is None:
            out_image = image
            t1 = t2 = t0
        else:
            self._buf = batch = to_batch([image], self._buf)
            t1 = time.perf_counter()
            if self.tiler is not None:
                out = self.tiler(self.backend, batch)
            else:
                out = run_padded(self.backend, batch, self.multiple)
            t2 = time.perf_counter()
            out_image = from_batch(out)[0]
        t3 = time.perf_counter()
        if timer is not None:
            timer("preprocess", t1 - t0)
            timer("network", t2 - t1)
            timer("postprocess", t3 - t2)
        original = image if self.keep_original else None
        return replace(frame, image=out_image, original=original)
