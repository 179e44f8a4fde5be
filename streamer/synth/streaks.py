"""Rain streaks: falling drops motion-blurred into oriented lines, screen-blended.

Screen blend I' = 1 − (1−I)(1−S) is the usual streak model (Fu et al., Yang et al.); the streak
layer S is sparse noise smeared along one wind angle with a line kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamer.synth.noise import blur


@dataclass(frozen=True)
class StreakParams:
    density: tuple[float, float] = (0.002, 0.02)  # seeds per pixel
    length_frac: tuple[float, float] = (0.02, 0.08)  # of the long side
    angle_deg: tuple[float, float] = (-25.0, 25.0)  # from vertical
    brightness: tuple[float, float] = (0.25, 0.8)
    width_px: tuple[float, float] = (0.0, 1.0)  # extra blur across the streak

    @staticmethod
    def heavy() -> "StreakParams":
        return StreakParams(density=(0.02, 0.05), brightness=(0.6, 1.0), length_frac=(0.06, 0.15))


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2.0
    t = np.deg2rad(angle_deg)
    dx, dy = np.sin(t) * c, np.cos(t) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, 1, lineType=cv2.LINE_AA)
    return k / max(k.sum(), 1e-6)


def apply_streaks(
    clean: np.ndarray, rng: np.random.Generator, params: StreakParams = StreakParams(),
    frame_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (rainy image, streak layer S H×W×1) for a float32 H×W×3 [0,1] image."""
    h, w = clean.shape[:2]
    density = rng.uniform(*params.density)
    seeds = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (h, w))
    seeds = blur(seeds.astype(np.float32), rng.uniform(*params.width_px))
    length = max(3, int(rng.uniform(*params.length_frac) * float(frame_px or max(h, w))) | 1)
    layer = cv2.filter2D(seeds, -1, _line_kernel(length, rng.uniform(*params.angle_deg)),
                         borderType=cv2.BORDER_REFLECT)
    peak = np.quantile(layer, 0.999) + 1e-6
    layer = np.clip(layer / peak * rng.uniform(*params.brightness), 0.0, 1.0)[..., None]
    out = 1.0 - (1.0 - clean) * (1.0 - layer)
    return out.astype(np.float32), layer.astype(np.float32)
