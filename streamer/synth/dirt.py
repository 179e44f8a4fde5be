"""Dirt on the glass, by Eigen et al.'s model  I' = p·α⊙D + (1−α)⊙I.

The paper photographed real dirt to get α (opacity) and D (dirt colour); we draw them
procedurally: multi-scale noise stains, round blobs, fine spatter and a few sharp opaque flecks,
all defocused by a random amount (the glass is out of focus), tinted brown or grey.
p ~ U(0.9,1.1)³ · U(0,1): a per-channel colour jitter times the dirt's brightness.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamer.synth.noise import blur, multiscale_noise

_DIRT_COLOURS = np.array(
    [[0.45, 0.35, 0.25], [0.55, 0.45, 0.33], [0.35, 0.30, 0.25], [0.5, 0.5, 0.5], [0.3, 0.3, 0.3],
     [0.6, 0.55, 0.45], [0.25, 0.2, 0.15]],
    np.float32,
)


@dataclass(frozen=True)
class DirtParams:
    """Ranges drawn per image; ``heavy()`` goes past the training ranges for generalisation tests."""

    coverage: tuple[float, float] = (0.02, 0.35)  # fraction of the frame stained
    opacity: tuple[float, float] = (0.1, 0.7)  # peak α of stains
    blobs: tuple[int, int] = (0, 25)  # round drops of mud per megapixel... scaled by area
    spatter: tuple[int, int] = (0, 400)
    flecks: tuple[int, int] = (0, 30)  # sharp, nearly opaque specks (hardest case)
    defocus_px: tuple[float, float] = (0.3, 4.0)

    @staticmethod
    def heavy() -> "DirtParams":
        return DirtParams(
            coverage=(0.3, 0.6), opacity=(0.6, 0.95), blobs=(20, 60), spatter=(300, 1200),
            flecks=(30, 120), defocus_px=(0.0, 1.0),
        )


def dirt_layers(
    rng: np.random.Generator, shape: tuple[int, int], params: DirtParams = DirtParams(),
    frame_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """α (H×W×1, [0,1]) and dirt colour D (H×W×3, [0,1]) for one frame (or a window of a frame
    whose long side is ``frame_px``: stains and blobs scale with it, their count per pixel
    shrinks with its square so the stained fraction stays the same)."""
    h, w = shape
    scale = float(frame_px or max(h, w))
    zoom = scale / max(h, w)
    area_mp = h * w / 1e6
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    noise = multiscale_noise(rng, shape, (scale / 4, scale / 12, scale / 40, 6.0))
    coverage = u(params.coverage)
    thresh = np.quantile(noise, 1.0 - coverage)
    stains = np.clip((noise - thresh) / 0.8, 0.0, 1.0) * u(params.opacity)

    marks = np.zeros(shape, np.float32)
    n_blobs = int(rng.integers(*params.blobs, endpoint=True) * max(area_mp, 0.05) * 4 / zoom**2)
    for _ in range(n_blobs):
        r = rng.uniform(2, max(3, scale / 30))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        axes = (int(r), int(r * rng.uniform(0.5, 1.0)))
        cv2.ellipse(marks, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360,
                    float(rng.uniform(0.3, 0.9)), -1, lineType=cv2.LINE_AA)
    n_spatter = int(rng.integers(*params.spatter, endpoint=True) * max(area_mp, 0.05) * 4)
    if n_spatter:
        ys = rng.integers(0, h, n_spatter)
        xs = rng.integers(0, w, n_spatter)
        marks[ys, xs] = np.maximum(marks[ys, xs], rng.uniform(0.2, 0.8, n_spatter))
        marks = np.maximum(marks, cv2.dilate(marks, np.ones((2, 2), np.uint8)) * 0.7)
    alpha = blur(np.maximum(stains, marks), u(params.defocus_px))

    n_flecks = int(rng.integers(*params.flecks, endpoint=True) * max(area_mp, 0.05) * 4)
    flecks = np.zeros(shape, np.float32)
    for _ in range(n_flecks):
        pts = (rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * rng.uniform(1.5, 6))
        pts += (rng.uniform(0, w), rng.uniform(0, h))
        cv2.fillPoly(flecks, [pts.astype(np.int32)], float(rng.uniform(0.85, 1.0)),
                     lineType=cv2.LINE_AA)
    alpha = np.clip(np.maximum(alpha, blur(flecks, 0.5)), 0.0, 1.0)

    base = _DIRT_COLOURS[rng.integers(len(_DIRT_COLOURS))]
    texture = multiscale_noise(rng, shape, (scale / 10, 8.0, 2.0))[..., None] * 0.08
    colour = np.clip(base[None, None, :] * (1.0 + texture), 0.0, 1.0)
    return alpha[..., None], colour.astype(np.float32)


def apply_dirt(
    clean: np.ndarray, rng: np.random.Generator, params: DirtParams = DirtParams(),
    frame_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a float32 H×W×3 [0,1] image; returns (dirty, α) with α H×W×1."""
    alpha, colour = dirt_layers(rng, clean.shape[:2], params, frame_px)
    p = rng.uniform(0.9, 1.1, 3).astype(np.float32) * np.float32(rng.uniform(0.0, 1.0))
    dirty = p * alpha * colour + (1.0 - alpha) * clean
    return np.clip(dirty, 0.0, 1.0).astype(np.float32), alpha
