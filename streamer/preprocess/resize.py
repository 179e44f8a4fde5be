"""Optional scaling before the network (cameras often deliver more pixels than the model needs)."""

from __future__ import annotations

import cv2
import numpy as np

from streamer.config import parse_wxh
from streamer.errors import ConfigError


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> (1280, 720)."""
    try:
        return parse_wxh(text)
    except ValueError as exc:
        raise ConfigError(f"size {text!r}: {exc}") from None


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale H×W×3 to ``size`` = (width, height); area filter down (no aliasing), linear up."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    shrink = w < image.shape[1] or h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
