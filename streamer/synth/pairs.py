"""Seeded (clean, corrupted, mask) pairs for files: what `streamer synth` writes and eval uses.

Each image gets its own generator seeded by ``(seed, crc32(file stem))``: the corruption of a photo
depends only on the seed and its name, not on which other files are in the folder, so the pairs
written by `streamer synth` are exactly the inputs `streamer eval` measures.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from streamer.errors import ConfigError, SinkError
from streamer.synth import CORRUPTIONS, corrupt


def image_rng(seed: int, stem: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(stem.encode())])


FRAME_PX = 1280  # corruption is sized for a 720p frame unless told otherwise


def corrupt_file_image(clean: np.ndarray, stem: str, kind: str, seed: int, *, heavy: bool = False,
                       frame_px: float | None = FRAME_PX) -> tuple[np.ndarray, np.ndarray]:
    """float32 H×W×3 [0,1] in, (corrupted, mask H×W×1) out, reproducible from (seed, stem).

    Drops, stains and streaks are sized for a frame ``frame_px`` wide (None: the image's own size).
    """
    return corrupt(clean, kind, image_rng(seed, stem), heavy=heavy, frame_px=frame_px)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _write_png(path: Path, rgb_or_gray: np.ndarray) -> None:
    img = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise SinkError(f"{path}: cannot write PNG; check the folder is writable")


def write_pairs(files: list[Path], out_dir: Path, kind: str, seed: int, *,
                heavy: bool = False, frame_px: float | None = FRAME_PX) -> list[Path]:
    """Write <stem>_clean.png, <stem>_<kind>.png and <stem>_<kind>_mask.png for each file."""
    from streamer.train.data import read_rgb

    if kind not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        clean = read_rgb(path)
        dirty, mask = corrupt_file_image(clean, path.stem, kind, seed, heavy=heavy, frame_px=frame_px)
        _write_png(out_dir / f"{path.stem}_clean.png", to_uint8(clean))
        _write_png(out_dir / f"{path.stem}_{kind}.png", to_uint8(dirty))
        _write_png(out_dir / f"{path.stem}_{kind}_mask.png", to_uint8(mask[..., 0]))
        written.append(out_dir / f"{path.stem}_{kind}.png")
    return written
