"""PyTorch eager inference: CPU, or CUDA with the whole module in FP16 (on an H100 its output is
74-76 dB from FP32 for fast and drn: far below one 8-bit level; scripts/cuda_bench.py).

On CUDA the pipeline hands it uint8 frames (``start_uint8``/``wait_uint8``, as OpenVINO): the
colour conversion runs on the GPU and a 720p frame crosses the bus as 2.7 MB each way instead of
11 MB of float32. Session 21's first full pipeline on an H100 spent 9.5 ms of each 720p frame on
the CPU's float conversions (24 ms at 1080p) against ~1.3 ms of network kernels; this path took it
from 67.6 to 194-203 fps at 720p and from 18.0 to 100 fps at 1080p (docs/gpu-training.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamer.errors import EngineError


class TorchBackend:
    name = "torch"

    def __init__(self, module: nn.Module, *, device: str = "cpu", fp16: bool = True,
                 threads: int = 0, multiple: int = 1, inflight: int = 1) -> None:
        if device == "cuda" and not torch.cuda.is_available():
            raise EngineError("torch backend: --device cuda asked but no CUDA GPU is visible to "
                              "PyTorch; use --device cpu or install a CUDA build of torch")
        if threads:
            torch.set_num_threads(threads)  # process-wide in torch; only the backend sets it
        self.device = torch.device(device)
        self.fp16 = fp16 and device == "cuda"
        self.multiple = multiple
        self.module = module.eval().to(self.device)
        if self.fp16:
            self.module = self.module.half()
        # the pipeline takes the uint8 path when this is true (FrameRestorer); on the CPU the
        # float path with its reused buffer stays (nothing to gain from the bus there)
        self.uint8_io = self.device.type == "cuda"
        self.inflight = max(1, int(inflight)) if self.uint8_io else 1
        self._pinned: dict[tuple[int, ...], list[torch.Tensor]] = {}
        self._started = 0

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))  # shares memory
        if self.device.type != "cpu":
            x = x.to(self.device, non_blocking=True)
        if self.fp16:
            x = x.half()
        y = self.module(x)
        return y.float().cpu().numpy()

    @torch.inference_mode()
    def start_uint8(self, images: np.ndarray):
        """Start N×H×W×3 uint8 RGB frames; ``wait_uint8`` the handles in the order they were
        started, at most ``inflight`` outstanding (each has its own pinned host buffers)."""
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        slot = self._started % self.inflight
        self._started += 1
        cuda = self.device.type == "cuda"
        if cuda:
            src, dst = self._buffers(tuple(x.shape), slot)
            src.copy_(x)  # a host memcpy; the upload below is then asynchronous
            x = src.to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().mul_(1.0 / 255.0)  # as to_batch, then the float path's cast
        y = self.module(x.half() if self.fp16 else x)
        # as from_batch: scale, round half to even, saturate
        y = y.float().mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)
        if not cuda:
            return None, y.contiguous()
        dst.copy_(y, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return done, dst

    def wait_uint8(self, handle) -> np.ndarray:
        done, out = handle
        if done is not None:
            done.synchronize()
        return out.numpy().copy()  # the pinned buffer is reused by the frame after next

    def _buffers(self, shape: tuple[int, ...], slot: int) -> list[torch.Tensor]:
        """Pinned (upload, download) buffers for ``slot``: page-locked memory is what lets the
        copies run asynchronously, and allocating it is slow, so it is kept per frame size."""
        if shape not in self._pinned:
            self._pinned = {shape: [torch.empty(shape, dtype=torch.uint8).pin_memory()
                                    for _ in range(2 * self.inflight)]}
        bufs = self._pinned[shape]
        return bufs[2 * slot: 2 * slot + 2]

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def __enter__(self) -> "TorchBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
