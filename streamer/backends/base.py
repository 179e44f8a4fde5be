"""What every inference backend is: N×3×H×W float32 [0,1] in, same shape out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...
