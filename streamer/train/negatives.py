"""Hard negatives: clean content the net must leave alone, where it was seen to harm it.

The default net darkened a white NO PARKING panel (docs/model-log.md E8b, E10): the dirt
synthesis has a faint bright haze, and bright flat areas with marks look like it. Two remedies:
mined windows of the training photos that look like text panels (``HardNegatives``) and
procedural signs pasted into the scene *before* corruption (``paste_sign``), so panels appear
both clean and under dirt, rain and drops, always with their true colour as the target.
Longer runs then erased real specks instead (white pebbles on grass, E33): ``speck_score`` mines
windows with many small isolated bright or dark spots. Its worst crop was in fact a faint tone
shift over a bright flat region (a white penguin): ``bright_score`` mines those (E35).
"""

from __future__ import annotations

import string

import cv2
import numpy as np

from streamer.errors import ConfigError

PANEL_COLOURS = ((0.96, 0.96, 0.94), (0.92, 0.93, 0.95), (0.98, 0.85, 0.15), (0.85, 0.86, 0.84))
GLYPH_COLOURS = ((0.05, 0.05, 0.05), (0.78, 0.08, 0.08), (0.06, 0.2, 0.6), (0.1, 0.35, 0.15))


def text_panel_score(patch: np.ndarray) -> float:
    """High for near-white flat areas with sharp dark marks (white signs with letters, plates,
    labels): white share × strong-edge share, 0 without dark marks. Such windows are rare among
    random ones, and there the net's false positives (darkening, tinting) were worst
    (docs/model-log.md E8b). Near-white (every channel > 0.7) leaves out blue sky."""
    y = patch.mean(axis=2)
    white = float((patch.min(axis=2) > 0.7).mean())
    dark = float((y < 0.35).mean())
    gy, gx = np.abs(np.diff(y, axis=0)), np.abs(np.diff(y, axis=1))
    edges = float((gy > 0.25).mean() + (gx > 0.25).mean())
    return white * min(1.0, 10.0 * edges) if dark > 0.01 else 0.0


_SPECK_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))


def speck_score(patch: np.ndarray) -> float:
    """High for many small isolated spots (3–60 px, ≥ 0.2 brighter or darker than around them,
    by a 9-px white/black top-hat) on a background that is not itself busy: pebbles, petals,
    sparkles — what a dirt or drop remover mistakes for a fleck. Spots per 10k px, scaled down
    as the share of fine texture (top-hat > 0.08) rises, so foliage and gravel score low."""
    y = patch.mean(axis=2).astype(np.float32)
    hat = np.maximum(y - cv2.morphologyEx(y, cv2.MORPH_OPEN, _SPECK_KERNEL),
                     cv2.morphologyEx(y, cv2.MORPH_CLOSE, _SPECK_KERNEL) - y)
    busy = float((hat > 0.08).mean())
    _, _, stats, _ = cv2.connectedComponentsWithStats((hat > 0.2).astype(np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    spots = int(((area >= 3) & (area <= 60)).sum())
    return spots * 1e4 / y.size * max(0.0, 1.0 - 3.0 * busy)


def bright_score(patch: np.ndarray) -> float:
    """Share of near-white pixels (every channel > 0.65): snow, white fur, walls, overcast sky —
    bright areas where a net that has learnt to lift a dirt veil shifts the tone of the whole
    region. Mining keeps only windows above the training patch's variance floor, so these come
    with some texture."""
    return float((patch.min(axis=2) > 0.65).mean())


HARD_SCORES = {"panels": text_panel_score, "specks": speck_score, "bright": bright_score}


GRID = 4  # mined windows start on this pixel grid: the score tables are 16× smaller than the photos


def _window_sums(values: np.ndarray, ph: int, pw: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sums of ``values`` over every ph×pw window whose corner is at (ys × xs), by an integral image."""
    ii = cv2.integral(values)  # (H+1)×(W+1): int32 for uint8 indicators, float64 for float32
    y0, x0 = ys[:, None], xs[None, :]
    return ii[y0 + ph, x0 + pw] - ii[y0, x0 + pw] - ii[y0 + ph, x0] + ii[y0, x0]


def score_table(img: np.ndarray, p: int, kind: str, min_var: float) -> np.ndarray:
    """``HARD_SCORES[kind]`` of every p×p window of ``img`` whose corner is on the ``GRID``
    (table[y // GRID, x // GRID]), −1 where the window's variance is below ``min_var``.

    The per-window functions above, computed once per photo from whole-photo maps: scoring 32
    windows of 384 px one by one took ~0.25 s per hard negative and starved a GPU (session 17).
    ``panels`` and ``bright`` match the functions exactly; ``specks`` counts the spots of the whole
    photo whose centre lies in the window, so spots cut by a window's edge count whole."""
    h, w = img.shape[:2]
    ys, xs = np.arange(0, h - p + 1, GRID), np.arange(0, w - p + 1, GRID)
    n = float(p * p)
    ind = lambda a: a.astype(np.uint8)  # noqa: E731  (an indicator map for an integer integral)
    # per channel (the same values as .min/.mean(axis=2), which took most of the build time)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    total = r + g + b
    lowest, y = np.minimum(np.minimum(r, g), b), total / 3
    if kind == "panels":
        white = _window_sums(ind(lowest > 0.7), p, p, ys, xs) / n
        dark = _window_sums(ind(y < 0.35), p, p, ys, xs) / n
        edges = (_window_sums(ind(np.abs(np.diff(y, axis=0)) > 0.25), p - 1, p, ys, xs)
                 + _window_sums(ind(np.abs(np.diff(y, axis=1)) > 0.25), p, p - 1, ys, xs)) / (p * (p - 1))
        score = np.where(dark > 0.01, white * np.minimum(1.0, 10.0 * edges), 0.0)
    elif kind == "specks":
        y = y.astype(np.float32)
        hat = np.maximum(y - cv2.morphologyEx(y, cv2.MORPH_OPEN, _SPECK_KERNEL),
                         cv2.morphologyEx(y, cv2.MORPH_CLOSE, _SPECK_KERNEL) - y)
        busy = _window_sums(ind(hat > 0.08), p, p, ys, xs) / n
        _, _, stats, centres = cv2.connectedComponentsWithStats(ind(hat > 0.2), connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA]
        cy, cx = np.round(centres[1:][(area >= 3) & (area <= 60)]).astype(int).T[::-1]
        spots = np.zeros((h, w), np.uint8)
        np.add.at(spots, (cy.clip(0, h - 1), cx.clip(0, w - 1)), 1)
        score = _window_sums(spots, p, p, ys, xs) * 1e4 / n * np.maximum(0.0, 1.0 - 3.0 * busy)
    elif kind == "bright":
        score = _window_sums(ind(lowest > 0.65), p, p, ys, xs) / n
    else:
        raise ConfigError(f"unknown hard-negative kind {kind!r} (one of {', '.join(HARD_SCORES)})")
    mean = _window_sums(total, p, p, ys, xs) / (3 * n)
    var = _window_sums(r * r + g * g + b * b, p, p, ys, xs) / (3 * n) - mean ** 2
    return np.where(var >= min_var, score, -1.0).astype(np.float32)


class HardNegatives:
    """Hard clean windows of one kind and size: the best-scoring of ``candidates`` random windows.

    The photos' score tables are built once (before the synthesis workers fork, so they share
    them); a draw is then 32 table lookups instead of 32 window scorings."""

    def __init__(self, images: list[np.ndarray], p: int, kind: str, *, min_var: float) -> None:
        if all(img.shape[0] < p or img.shape[1] < p for img in images):
            raise ConfigError(f"no training photo is at least {p} px on each side")
        self.images, self.p = images, p
        self.tables = [score_table(img, p, kind, min_var) if min(img.shape[:2]) >= p else None
                       for img in images]

    def draw(self, rng: np.random.Generator, candidates: int = 32) -> np.ndarray:
        """Windows flatter than the variance floor only if nothing else was drawn."""
        p, best, best_score = self.p, None, -2.0
        for _ in range(candidates):
            i = rng.integers(len(self.images))
            table = self.tables[i]
            if table is None:
                continue
            h, w = self.images[i].shape[:2]
            y, x = rng.integers(0, h - p + 1) // GRID, rng.integers(0, w - p + 1) // GRID
            if table[y, x] > best_score:
                best, best_score = (i, y * GRID, x * GRID), table[y, x]
        if best is None:  # every draw hit a photo smaller than p
            return self.draw(rng, candidates)
        i, y, x = best
        patch = self.images[i][y:y + p, x:x + p]
        return np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch)


def paste_sign(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``region`` with a sign-like panel: a white/grey/yellow rectangle, maybe a dark
    border, lines of random capitals in black/red/blue/green, lit like the scene around it."""
    h, w = region.shape[:2]
    sw = int(rng.uniform(0.25, 0.8) * w)
    sh = int(np.clip(sw * rng.uniform(0.35, 1.2), 16, h))
    y, x = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    panel = np.empty((sh, sw, 3), np.uint8)  # OpenCV draws text on 8-bit images only
    panel[:] = np.round(np.array(PANEL_COLOURS[rng.integers(len(PANEL_COLOURS))]) * 255)
    glyph = tuple(int(round(c * 255)) for c in GLYPH_COLOURS[rng.integers(len(GLYPH_COLOURS))])
    if rng.random() < 0.5:
        t = max(1, sw // 40)
        cv2.rectangle(panel, (t, t), (sw - 1 - t, sh - 1 - t), glyph, t)
    lines = int(rng.integers(1, 4))
    for i in range(lines):
        text = "".join(rng.choice(list(string.ascii_uppercase + "  "), size=int(rng.integers(2, 10))))
        scale = 1.0
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        scale = min(0.85 * sw / max(tw, 1), 0.8 * sh / lines / max(th, 1))
        thick = max(1, int(round(scale * rng.uniform(1.5, 3.0))))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        org = ((sw - tw) // 2, int((i + 0.5) * sh / lines + th / 2))
        cv2.putText(panel, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, glyph, thick, cv2.LINE_AA)
    light = float(np.clip(region[y:y + sh, x:x + sw].mean() * rng.uniform(1.5, 2.5), 0.65, 1.0))
    out = region.copy()
    out[y:y + sh, x:x + sw] = np.clip(panel.astype(np.float32) * (light / 255.0), 0.0, 1.0)
    return out
