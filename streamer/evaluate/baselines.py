"""Classical restorers the paper compares against (Table 1), float32 H×W×3 RGB [0,1] in and out.

* median 5×5: OpenCV ``medianBlur`` on 8-bit, per channel.
* median 8×8: an even window has no centre; ``scipy.ndimage.median_filter(size=(8, 8, 1))``
  per channel, whose window covers offsets −4…+3 around each pixel (scipy's default origin),
  reflect borders. (OpenCV's medianBlur only takes odd sizes.) SciPy comes with the ``eval``
  extra, imported on use.
* bilateral σs = 3 px, σr = 0.3 (on [0,1] values): ``cv2.bilateralFilter`` on float32 with
  diameter d = 2·⌈2σs⌉ + 1 = 13 (the Gaussian is < 14 % at the edge).
* non-local means: ``cv2.fastNlMeansDenoisingColored`` h = hColor = 10 (of 255), 7×7 patches,
  21×21 search: OpenCV's documented defaults for natural photos.
* BM3D: the ``bm3d`` PyPI package (Mäkinen et al., maintained) with σ = 25/255, a strong
  setting since dirt is not white noise; present only if the package is installed.
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from streamer.evaluate.metrics import require_eval

Restorer = Callable[[np.ndarray], np.ndarray]


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def median5(img: np.ndarray) -> np.ndarray:
    return cv2.medianBlur(_u8(img), 5).astype(np.float32) / 255.0


def median8(img: np.ndarray) -> np.ndarray:
    ndimage = require_eval("scipy.ndimage")
    return ndimage.median_filter(img, size=(8, 8, 1), mode="reflect").astype(np.float32)


def bilateral(img: np.ndarray, sigma_s: float = 3.0, sigma_r: float = 0.3) -> np.ndarray:
    d = 2 * math.ceil(2 * sigma_s) + 1
    return cv2.bilateralFilter(np.ascontiguousarray(img, np.float32), d, sigma_r, sigma_s)


def nl_means(img: np.ndarray) -> np.ndarray:
    out = cv2.fastNlMeansDenoisingColored(_u8(img), None, 10, 10, 7, 21)
    return out.astype(np.float32) / 255.0


def bm3d_rgb(img: np.ndarray, sigma: float = 25.0 / 255.0) -> np.ndarray:
    import bm3d

    return np.clip(bm3d.bm3d_rgb(img, sigma), 0.0, 1.0).astype(np.float32)


def available_baselines(include_bm3d: bool = True) -> dict[str, Restorer]:
    """Name -> restorer; BM3D only when its package imports (it is optional)."""
    table: dict[str, Restorer] = {
        "median 5x5": median5,
        "median 8x8": median8,
        "bilateral s3 r0.3": bilateral,
        "non-local means": nl_means,
    }
    if include_bm3d:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            pass
        else:
            table["BM3D s25"] = bm3d_rgb
    return table
