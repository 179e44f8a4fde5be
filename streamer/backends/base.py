"""What every inference backend is: N×3×H×W float32 [0,1] in, same shape out.

A backend that also takes uint8 frames (OpenVINO; torch and TensorRT on CUDA) sets ``uint8_io``
true and offers ``start_uint8(N×H×W×3 uint8)`` / ``wait_uint8(handle)``, with ``inflight`` frames
at most outstanding; ``FrameRestorer`` then skips its float conversions.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...
