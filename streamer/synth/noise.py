"""Seeded smooth random fields shared by the corruption generators."""

from __future__ import annotations

import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Gaussian noise low-passed at ``scale_px``, normalised to zero mean, unit std."""
    h, w = shape
    small = (max(2, int(np.ceil(h / scale_px)) + 2), max(2, int(np.ceil(w / scale_px)) + 2))
    base = rng.standard_normal(small).astype(np.float32)
    field = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def multiscale_noise(
    rng: np.random.Generator, shape: tuple[int, int], scales_px: tuple[float, ...]
) -> np.ndarray:
    """Sum of octaves, 1/f-like weighting: large stains with ragged edges."""
    total = np.zeros(shape, np.float32)
    for i, s in enumerate(scales_px):
        total += smooth_noise(rng, shape, s) * (0.6**i)
    return (total - total.mean()) / (total.std() + 1e-6)


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; no-op below a tenth of a pixel (keeps tiny sigmas exact)."""
    if sigma_px < 0.1:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)
