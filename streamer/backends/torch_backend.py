"""PyTorch eager inference: CPU, or CUDA with the whole module in FP16 (on an H100 its output is
74-76 dB from FP32 for fast and drn: far below one 8-bit level; scripts/cuda_bench.py).

On CUDA the pipeline hands it uint8 frames (``start_uint8``/``wait_uint8``, as OpenVINO) and
the conversion runs on the GPU (``gpu_frames``): 3-6x the fps of the float path on an H100.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamer.backends.gpu_frames import GpuFrames
from streamer.errors import EngineError


class TorchBackend:
    name = "torch"

    def __init__(self, module: nn.Module, *, device: str = "cpu", fp16: bool = True,
                 threads: int = 0, multiple: int = 1, inflight: int = 1) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"torch backend: --device {device} asked but no CUDA GPU is visible to "
                              "PyTorch; use --device cpu or install a CUDA build of torch")
        if threads:
            torch.set_num_threads(threads)  # process-wide in torch; only the backend sets it
        self.device = torch.device(device)
        if self.device.type == "cuda" and (self.device.index or 0) >= torch.cuda.device_count():
            raise EngineError(f"torch backend: --device {device}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        self.fp16 = fp16 and self.device.type == "cuda"
        self.multiple = multiple
        self.module = module.eval().to(self.device)
        if self.fp16:
            self.module = self.module.half()
        # the pipeline takes the uint8 path when this is true (FrameRestorer); on the CPU the
        # float path with its reused buffer stays (nothing to gain from the bus there)
        self.uint8_io = self.device.type == "cuda"
        self.inflight = max(1, int(inflight)) if self.uint8_io else 1
        self._frames = GpuFrames(self._run, self.device, inflight=self.inflight)

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))  # shares memory
        if self.device.type != "cpu":
            x = x.to(self.device, non_blocking=True)
        return self._run(x).float().cpu().numpy()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """N×3×H×W float32 on the device -> the module's output (FP16 inside on CUDA)."""
        return self.module(x.half() if self.fp16 else x)

    def start_uint8(self, images: np.ndarray):
        """Start N×H×W×3 uint8 RGB frames; ``wait_uint8`` the handles in order (``GpuFrames``)."""
        return self._frames.start(images)

    def wait_uint8(self, handle) -> np.ndarray:
        return self._frames.finish(handle)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def __enter__(self) -> "TorchBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
