"""Image-quality numbers as the papers report them: PSNR on RGB 0–255, Gaussian SSIM, and UQI
(the DRN case study's third metric).

All take uint8 H×W×3 RGB (``psnr_db`` takes float [0, 1] images too): a restored frame is judged as the user would see it (rounded to 8 bit).
SSIM is Wang et al. 2004 with an 11-tap Gaussian window σ = 1.5 and population covariances
(scikit-image ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``), computed per colour channel and averaged. UQI is Wang & Bovik's
2002 universal quality index: SSIM without its stabilising constants, over 8×8 sliding windows.

scikit-image (and SciPy, for the 8×8 median baseline) come with the ``eval`` extra and are imported
on use (``require_eval``): PSNR, which training validation and export parity use, needs neither.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType

import cv2
import numpy as np

from streamer.errors import ConfigError, install_extra

EVAL_MODULES = ("skimage.metrics", "scipy.ndimage")  # what the eval extra (scikit-image, SciPy) gives eval

PSNR_CAP_DB = 100.0  # identical images: a finite number (JSON has no infinity)


def psnr_db(result: np.ndarray, reference: np.ndarray, data_range: float | None = None) -> float:
    """10·log10(range² / MSE) over all pixels and channels, at most ``PSNR_CAP_DB``. The one PSNR
    of eval, training validation and export parity; ``data_range`` defaults to 255 for uint8 and
    1 for float images in [0, 1]."""
    if data_range is None:
        if (result.dtype == np.uint8) != (reference.dtype == np.uint8):
            raise ValueError(f"psnr_db: {result.dtype} against {reference.dtype}; give both in one range")
        data_range = 255.0 if result.dtype == np.uint8 else 1.0
    mse = float(np.mean((np.asarray(result, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * math.log10(data_range**2 / mse))


def require_eval(module: str) -> ModuleType:
    """``import module`` (scikit-image's or SciPy's), or one line saying how to get the eval
    extra. scikit-image present without SciPy (which it needs) says the same."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("skimage", "scipy"):
            raise
        raise ConfigError(f"streamer eval needs the eval extra (scikit-image, SciPy): {install_extra('eval')}"
                          ) from exc


def ssim(result: np.ndarray, reference: np.ndarray) -> float:
    return float(require_eval("skimage.metrics").structural_similarity(
        result, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=2, data_range=255,
    ))


UQI_WINDOW = 8  # Wang & Bovik 2002: an 8×8 window slid pixel by pixel


def uqi(result: np.ndarray, reference: np.ndarray) -> float:
    """Universal quality index Q = [2σxy/(σx²+σy²)]·[2μxμy/(μx²+μy²)], mean over every 8×8 window
    and colour channel. Each factor is 1 where its denominator is 0 (two flat windows of equal
    brightness are identical), so flat sky does not turn into NaN as the bare formula would."""
    x = result.astype(np.float64)
    y = reference.astype(np.float64)
    k = (UQI_WINDOW, UQI_WINDOW)
    mean = lambda a: cv2.blur(a, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    half = UQI_WINDOW // 2
    valid = (slice(half, x.shape[0] - half + 1), slice(half, x.shape[1] - half + 1))  # whole windows only

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.ones_like(num)
        np.divide(num, den, out=out, where=den > 1e-9)
        return out

    q = ratio(2 * cxy, vx + vy) * ratio(2 * mx * my, mx * mx + my * my)
    return float(q[valid].mean())
