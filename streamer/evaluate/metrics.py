"""Image-quality numbers as the paper reports them: PSNR on RGB 0–255 and Gaussian SSIM.

Both take uint8 H×W×3 RGB: a restored frame is judged as the user would see it (rounded to 8 bit).
SSIM is Wang et al. 2004 with an 11-tap Gaussian window σ = 1.5 and population covariances
(scikit-image ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``), computed per colour channel and averaged.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

PSNR_CAP_DB = 100.0  # identical images: reported as 100 dB instead of infinity


def psnr_db(result: np.ndarray, reference: np.ndarray) -> float:
    """10·log10(255² / MSE) over all pixels and channels, uint8 inputs."""
    mse = float(np.mean((result.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * math.log10(255.0**2 / mse))


def ssim(result: np.ndarray, reference: np.ndarray) -> float:
    return float(structural_similarity(
        result, reference, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=2, data_range=255,
    ))
