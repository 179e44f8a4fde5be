"""Overlapping tiles with smooth blend windows, and padding to the model's size multiple.

Eigen et al. run large images in sections; we do the same so memory and engine shapes stay
fixed. Each tile is cut with ``overlap`` pixels shared with its neighbour. In the blend, a tile's
weight is 0 over the first quarter of the overlap at an inner edge (where zero padding inside the
network makes its output wrong), rises smoothly over the middle half, and is 1 elsewhere; weights
are normalised per pixel. A fully convolutional model whose receptive-field radius is at most
``overlap // 4`` therefore gives the same output tiled as untiled (up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from streamer.errors import ConfigError

BatchFn = Callable[[np.ndarray], np.ndarray]  # N×3×h×w -> N×3×h×w


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _pad_hw(array: np.ndarray, multiple: int, h_axis: int) -> np.ndarray:
    """Pad axes ``h_axis`` and ``h_axis + 1`` at the bottom/right up to multiples: reflect, or
    edge when an axis is too short to reflect."""
    h, w = array.shape[h_axis:h_axis + 2]
    ph, pw = round_up(h, multiple) - h, round_up(w, multiple) - w
    if not ph and not pw:
        return array
    widths = [(0, 0)] * array.ndim
    widths[h_axis], widths[h_axis + 1] = (0, ph), (0, pw)
    return np.pad(array, widths, mode="reflect" if ph < h and pw < w else "edge")


def pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad N×C×H×W at the bottom/right so H and W are multiples (crop after the network)."""
    return _pad_hw(batch, multiple, batch.ndim - 2)


def pad_image_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """The same padding as ``pad_to_multiple`` for one H×W×C picture (uint8 backends)."""
    return _pad_hw(image, multiple, 0)


def run_padded(fn: BatchFn, batch: np.ndarray, multiple: int) -> np.ndarray:
    h, w = batch.shape[-2:]
    return fn(pad_to_multiple(batch, multiple))[..., :h, :w]


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins along one axis; the last tile sits flush with the end (all tiles one size)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _window(length: int, overlap: int, inner_before: bool, inner_after: bool) -> np.ndarray:
    """1-D blend weight: 1, but 0 -> smooth ramp -> 1 at edges shared with another tile."""
    w = np.ones(length, np.float32)
    margin = overlap // 4
    ramp = max(overlap - 2 * margin, 1)
    x = np.arange(length, dtype=np.float32)
    t = np.clip((x - margin + 0.5) / ramp, 0.0, 1.0)
    rise = t * t * (3.0 - 2.0 * t)  # smoothstep: no kink where tiles meet
    if inner_before:
        w *= rise
    if inner_after:
        w *= rise[::-1]
    return w


@dataclass(frozen=True)
class Tiler:
    """Run ``fn`` over overlapping ``tile``×``tile`` sections of each picture and blend them."""

    tile: int
    overlap: int = 32
    multiple: int = 1
    max_batch: int = 8  # tiles per backend call
    even: bool = False
    """Split each side into equal tiles of at most ``tile`` (fewer pixels through the network, e.g.
    a 4200-px side in 3 tiles of ~1420, not 3 of 2048); False keeps every tile ``tile``×``tile``,
    the one shape a fixed-size engine takes."""

    def __post_init__(self) -> None:
        if self.tile <= 0:
            raise ConfigError(f"tiling: tile {self.tile} must be a positive side in px (0 = whole frames)")
        if self.overlap < 0 or self.overlap >= self.tile:
            raise ConfigError(f"tiling: overlap {self.overlap} must be at least 0 and "
                              f"smaller than tile {self.tile}")

    def _even(self, length: int, tile: int) -> int:
        """The smallest tile (a multiple of ``multiple``) that covers ``length`` in as few tiles
        as ``tile`` does, each sharing ``overlap`` with the next."""
        if length <= tile:
            return tile
        count = -(-(length - self.overlap) // (tile - self.overlap))
        return min(tile, round_up(-(-(length + (count - 1) * self.overlap) // count), self.multiple))

    def __call__(self, fn: BatchFn, batch: np.ndarray) -> np.ndarray:
        n, c, h, w = batch.shape
        tile = round_up(self.tile, self.multiple)
        if h <= tile and w <= tile:
            return run_padded(fn, batch, self.multiple)
        th, tw = min(tile, round_up(h, self.multiple)), min(tile, round_up(w, self.multiple))
        if self.even:
            th, tw = self._even(h, th), self._even(w, tw)
        padded = pad_to_multiple(batch, self.multiple) if (h < th or w < tw) else batch
        ph, pw = padded.shape[-2:]
        step_h, step_w = th - self.overlap, tw - self.overlap
        ys, xs = _starts(ph, th, step_h), _starts(pw, tw, step_w)
        out = np.zeros((n, c, ph, pw), np.float32)
        weight = np.zeros((ph, pw), np.float32)
        boxes = [(y, x) for y in ys for x in xs]
        for img in range(n):
            for i in range(0, len(boxes), self.max_batch):
                chunk = boxes[i:i + self.max_batch]
                tiles = np.stack([padded[img, :, y:y + th, x:x + tw] for y, x in chunk])
                result = fn(tiles)
                for (y, x), res in zip(chunk, result):
                    wy = _window(th, self.overlap, y > 0, y + th < ph)
                    wx = _window(tw, self.overlap, x > 0, x + tw < pw)
                    win = wy[:, None] * wx[None, :]
                    out[img, :, y:y + th, x:x + tw] += res * win
                    if img == 0:
                        weight[y:y + th, x:x + tw] += win
        out /= weight
        return out[..., :h, :w]
