"""uint8 frames in and out of a network on the GPU: the pipeline's uint8 path (FrameRestorer's
``start_uint8``/``wait_uint8``) for the torch and TensorRT backends.

Why: a float32 frame costs the CPU a conversion each way (9.5 ms per 720p frame, 24 ms at 1080p
on the H100 host of session 21, more on a Jetson's ARM cores) and four times the bytes on the
bus. Here uint8 frames go through pinned host buffers, the conversion runs on the device, and up
to ``inflight`` frames are queued while the CPU decodes and encodes: on the H100 the torch
pipeline went from 67.6 to 194-203 fps at 720p and from 18.0 to 100 fps at 1080p.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

RunFn = Callable[[torch.Tensor], torch.Tensor]  # N×3×H×W float32 [0, 1] on the device -> same shape


class GpuFrames:
    """Starts and finishes uint8 frames through ``run``; on a CPU device (tests) the same math
    without pinned buffers or events. Handles must be finished in the order they were started,
    at most ``inflight`` outstanding: each slot's buffers are reused by the frame ``inflight``
    later."""

    def __init__(self, run: RunFn, device: torch.device, *, inflight: int = 1,
                 stream: torch.cuda.Stream | None = None) -> None:
        self.run = run
        self.device = device
        self.inflight = max(1, int(inflight))
        self.stream = stream  # None: the current stream
        self._pinned: dict[tuple[int, ...], list[torch.Tensor]] = {}
        self._started = 0

    @torch.inference_mode()
    def start(self, images: np.ndarray):
        """N×H×W×3 uint8 RGB frames -> a handle for ``finish``."""
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        if self.device.type != "cuda":
            return None, _to_uint8(self.run(_to_float(x)))
        slot = self._started % self.inflight
        self._started += 1
        src, dst = self._buffers(tuple(x.shape), slot)
        src.copy_(x)  # a host memcpy; the upload below is then asynchronous
        stream = self.stream or torch.cuda.current_stream(self.device)
        with torch.cuda.stream(stream):
            y = _to_uint8(self.run(_to_float(src.to(self.device, non_blocking=True))))
            dst.copy_(y, non_blocking=True)
            done = torch.cuda.Event()
            done.record(stream)
        return done, dst

    def finish(self, handle) -> np.ndarray:
        done, out = handle
        if done is not None:
            done.synchronize()
        return out.numpy().copy()  # the pinned buffer is reused by a later frame

    def _buffers(self, shape: tuple[int, ...], slot: int) -> list[torch.Tensor]:
        """Pinned (upload, download) buffers for ``slot``: page-locked memory is what lets the
        copies run asynchronously, and allocating it is slow, so it is kept per frame size."""
        if shape not in self._pinned:
            self._pinned = {shape: [torch.empty(shape, dtype=torch.uint8).pin_memory()
                                    for _ in range(2 * self.inflight)]}
        return self._pinned[shape][2 * slot: 2 * slot + 2]


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """N×H×W×3 uint8 -> N×3×H×W float32 [0, 1], as ``preprocess.color.to_batch``; contiguous NCHW
    (a plain ``.float()`` of the permuted view keeps channels-last strides, which an engine reading
    ``data_ptr()`` would misread)."""
    return x.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format).mul_(1.0 / 255.0)


def _to_uint8(y: torch.Tensor) -> torch.Tensor:
    """N×3×H×W float -> N×H×W×3 uint8, as ``preprocess.color.from_batch`` (round half to even,
    saturate)."""
    return y.float().mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
