"""Dirt on the glass, by Eigen et al.'s model  I' = p·α⊙D + (1−α)⊙I.

The paper photographed real dirt to get α (opacity) and D (dirt colour); we draw them
procedurally. Mud on a lens is mostly *spots*: splashes and dust from a pixel to a few tens of
pixels across, ragged, defocused, some nearly opaque — the structure the paper's own 23-px net
could remove (+6.5 dB). On top come smudges (mid-scale multi-scale noise), a faint broad haze,
and sharp opaque flecks, tinted brown or grey.
p ~ U(0.9,1.1)³ · U(0,1): a per-channel colour jitter times the dirt's brightness.

Sizes and counts are given for a 1280-px frame and scale with ``frame_px``, so a 256-px training
crop of a 720p frame carries the spots a 720p camera would see.
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
_REF_PX = 1280.0  # counts and sizes below are for a frame this wide


@dataclass(frozen=True)
class DirtParams:
    """Ranges drawn per image; ``heavy()`` goes past the training ranges for generalisation tests."""

    spots: tuple[float, float] = (40.0, 500.0)  # mud spots per megapixel of a 1280-px frame
    spot_radius_px: tuple[float, float] = (1.0, 14.0)  # log-uniform, at 1280 px
    spot_opacity: tuple[float, float] = (0.2, 0.9)
    coverage: tuple[float, float] = (0.0, 0.15)  # fraction of the frame under smudges
    opacity: tuple[float, float] = (0.1, 0.5)  # peak α of smudges
    haze: tuple[float, float] = (0.0, 0.2)  # peak α of a broad film over part of the frame
    flecks: tuple[float, float] = (0.0, 60.0)  # sharp, nearly opaque specks, same unit as spots
    defocus_px: tuple[float, float] = (0.3, 3.0)

    @staticmethod
    def heavy() -> "DirtParams":
        return DirtParams(
            spots=(700.0, 2500.0), spot_radius_px=(2.0, 30.0), spot_opacity=(0.6, 1.0),
            coverage=(0.25, 0.5), opacity=(0.6, 0.95), haze=(0.2, 0.4), flecks=(60.0, 200.0),
            defocus_px=(0.0, 1.0),
        )


def _spots(rng: np.random.Generator, shape: tuple[int, int], n: int, radius: tuple[float, float],
           opacity: tuple[float, float]) -> np.ndarray:
    """Ragged filled polygons (log-uniform radius) with per-spot opacity; later spots cover earlier ones."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    if n <= 0:
        return out
    lo, hi = np.log(radius[0]), np.log(max(radius[1], radius[0] * 1.01))
    radii = np.exp(rng.uniform(lo, hi, n))
    centres = rng.uniform((0, 0), (w, h), (n, 2))
    alphas = rng.uniform(*opacity, n)
    for r, c, a in zip(radii, centres, alphas):
        vertices = int(rng.integers(10, 17))
        ang = np.sort(rng.uniform(0, 2 * np.pi, vertices))
        rr = r * rng.uniform(0.8, 1.15, vertices)
        squash = rng.uniform(0.5, 1.0)
        pts = np.stack([c[0] + rr * np.cos(ang), c[1] + rr * np.sin(ang) * squash], 1)
        poly = (pts * 16).astype(np.int32)  # 4 fractional bits: sub-pixel spots stay round
        cv2.fillPoly(out, [poly], float(a), lineType=cv2.LINE_AA, shift=4)
    return out


def dirt_layers(
    rng: np.random.Generator, shape: tuple[int, int], params: DirtParams = DirtParams(),
    frame_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """α (H×W×1, [0,1]) and dirt colour D (H×W×3, [0,1]) for one frame (or a window of a frame
    whose long side is ``frame_px``: spots and smudges scale with it, their count per pixel
    shrinks with its square so the stained fraction stays the same)."""
    h, w = shape
    scale = float(frame_px or max(h, w))
    k = scale / _REF_PX  # px of this window per px of a 1280-px frame
    frame_mp = h * w / 1e6 / k**2  # this window's area in megapixels of the 1280-px frame
    u = lambda r: float(rng.uniform(*r))  # noqa: E731

    n_spots = int(rng.poisson(u(params.spots) * frame_mp))
    r = params.spot_radius_px
    marks = _spots(rng, shape, n_spots, (r[0] * k, r[1] * k), params.spot_opacity)

    smudge = multiscale_noise(rng, shape, (scale / 40, scale / 100, max(3.0, 4.0 * k)))
    coverage = u(params.coverage)
    smudges = np.zeros(shape, np.float32)
    if coverage > 0:
        thresh = np.quantile(smudge, 1.0 - coverage)
        smudges = np.clip((smudge - thresh) / 0.5, 0.0, 1.0) * u(params.opacity)
    haze = np.clip(multiscale_noise(rng, shape, (scale / 4, scale / 12)) * 0.5 + 0.5, 0.0, 1.0)
    alpha = blur(np.maximum(np.maximum(smudges, marks), haze * u(params.haze)), u(params.defocus_px) * k)

    n_flecks = int(rng.poisson(u(params.flecks) * frame_mp))
    flecks = _spots(rng, shape, n_flecks, (0.8 * k, 3.0 * k), (0.85, 1.0))
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
