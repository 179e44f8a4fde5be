"""Frame -> batch -> backend -> Frame: the preprocess and postprocess stages around the network."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import numpy as np

from streamer.backends.base import Backend
from streamer.frame import Frame
from streamer.preprocess.color import from_batch, to_batch
from streamer.preprocess.resize import resize
from streamer.preprocess.tiles import Tiler, pad_image_to_multiple, run_padded

StageTimer = Callable[[str, float], None]  # (stage, seconds)


class FrameRestorer:
    """Cleans one frame with ``backend``; reports preprocess/network/postprocess seconds."""

    def __init__(self, backend: Backend | None, *, size: tuple[int, int] | None = None,
                 tile: int = 0, overlap: int = 32, keep_original: bool = False) -> None:
        self.backend = backend  # None = passthrough (benchmarks, plumbing tests)
        self.size = size
        self.keep_original = keep_original
        multiple = int(getattr(backend, "multiple", 1) or 1)
        fixed = getattr(backend, "input_hw", None)  # engines built for one shape
        if fixed and not tile:
            tile = max(fixed)
        self.multiple = multiple
        self.tiler = Tiler(tile, min(overlap, tile // 2), multiple) if tile else None
        self._buf: np.ndarray | None = None

    def __call__(self, frame: Frame, timer: StageTimer | None = None) -> Frame:
        t0 = time.perf_counter()
        image = resize(frame.image, self.size) if self.size else frame.image
        if self.backend is None:
            out_image = image
            t1 = t2 = t0
        elif self.tiler is None and hasattr(self.backend, "run_uint8"):
            # the backend converts uint8 HWC <-> float CHW inside the network (OpenVINO)
            padded = pad_image_to_multiple(image, self.multiple)
            t1 = time.perf_counter()
            out_image = self.backend.run_uint8(padded[None])[0]
            t2 = time.perf_counter()
            if out_image.shape != image.shape:
                out_image = np.ascontiguousarray(out_image[:image.shape[0], :image.shape[1]])
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
