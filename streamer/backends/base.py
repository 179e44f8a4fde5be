"""What every inference backend is: N×3×H×W float32 [0,1] in, same shape out.

A backend that also takes uint8 frames (OpenVINO; torch and TensorRT on CUDA) sets ``uint8_io``
true and offers ``start_uint8(N×H×W×3 uint8)`` / ``wait_uint8(handle)``, with ``inflight`` frames
at most outstanding; ``FrameRestorer`` then skips its float conversions. A backend whose batch
size is bounded (a fixed-size export: 1) says so with ``max_batch`` (0 or absent: any).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def fixed_size_error(label: str, model_hw: tuple[int, int], got_hw: tuple[int, int]) -> str:
    """Why a fixed-size model (``export --size``) cannot take this frame, and the two ways out
    (tiles are square, so tiling cannot feed a non-square fixed size)."""
    (mh, mw), (h, w) = model_hw, got_hw
    return (f"{label}: built for {mw}x{mh} input, got {w}x{h}; set preprocess.resize: {mw}x{mh} "
            f"(bench: --size {mw}x{mh}; or export without --size: any frame size)")
