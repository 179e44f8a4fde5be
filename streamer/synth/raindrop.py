"""Raindrops on the glass (after Halimeh & Roser, IV 2009).

Each drop is a small convex lens: it shows a flipped, zoomed-out view of the scene around it,
defocused because the camera focuses on the scene, with a darker rim where light is bent away.
Drops vary in size and density; the whole drop layer is itself slightly out of focus.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamer.synth.noise import blur


@dataclass(frozen=True)
class RaindropParams:
    count_per_mp: tuple[float, float] = (20.0, 400.0)
    radius_frac: tuple[float, float] = (0.004, 0.03)  # of the long side
    zoom: tuple[float, float] = (2.0, 5.0)  # how much wider the drop's view is than the drop
    inner_blur_px: tuple[float, float] = (0.5, 3.0)
    edge_blur_px: tuple[float, float] = (0.5, 2.0)

    @staticmethod
    def heavy() -> "RaindropParams":
        return RaindropParams(count_per_mp=(400.0, 900.0), radius_frac=(0.02, 0.06))


def apply_raindrops(
    clean: np.ndarray, rng: np.random.Generator, params: RaindropParams = RaindropParams(),
    frame_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (rainy image, drop mask H×W×1 in [0,1]) for a float32 H×W×3 [0,1] image.

    Drop radii are fractions of ``frame_px`` (default: this image's long side); the count is per
    megapixel of a frame that size, so a crop of a big frame gets fewer, bigger drops."""
    h, w = clean.shape[:2]
    scale = float(frame_px or max(h, w))
    zoom = scale / max(h, w)
    # at least one drop: a crop of a big frame may hold few, but "raindrop" never means none
    n = max(1, int(rng.uniform(*params.count_per_mp) * max(h * w / 1e6, 0.02) / zoom**2 + rng.random()))
    map_x = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    mask = np.zeros((h, w), np.float32)
    rim = np.zeros((h, w), np.float32)
    for _ in range(n):
        r = rng.uniform(*params.radius_frac) * scale
        r = max(r, 1.5)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        squash = rng.uniform(0.7, 1.0)  # drops run: slightly taller than wide
        x0, x1 = int(max(0, cx - r - 2)), int(min(w, cx + r + 3))
        y0, y1 = int(max(0, cy - r / squash - 2)), int(min(h, cy + r / squash + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = (xx - cx) / r, (yy - cy) * squash / r
        d2 = dx * dx + dy * dy
        inside = d2 < 1.0
        zoom = rng.uniform(*params.zoom)
        # lens: point-flipped, magnified-out sample of the scene around (and above) the drop
        sx = cx - dx * r * zoom
        sy = cy - dy * r * zoom / squash - r * rng.uniform(0, 2)
        map_x[y0:y1, x0:x1] = np.where(inside, sx, map_x[y0:y1, x0:x1])
        map_y[y0:y1, x0:x1] = np.where(inside, sy, map_y[y0:y1, x0:x1])
        mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], inside.astype(np.float32))
        ring = np.clip((d2 - 0.6) / 0.4, 0.0, 1.0) * inside
        rim[y0:y1, x0:x1] = np.maximum(rim[y0:y1, x0:x1], ring)
    if n == 0:
        return clean.copy(), mask[..., None]
    refracted = cv2.remap(clean, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    refracted = blur(refracted, rng.uniform(*params.inner_blur_px))
    # darker rim, slight brightening in the middle (light focused by the lens)
    shade = 1.0 - 0.45 * rim + 0.06 * (mask - rim)
    refracted = np.clip(refracted * shade[..., None], 0.0, 1.0)
    soft = blur(mask, rng.uniform(*params.edge_blur_px))[..., None]
    out = soft * refracted + (1.0 - soft) * clean
    return np.clip(out, 0.0, 1.0).astype(np.float32), soft.astype(np.float32)
