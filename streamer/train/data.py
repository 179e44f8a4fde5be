"""Clean photos -> (corrupted, clean) training patches, synthesised on the fly.

Split: a fixed, documented rule (sha256 of the *group* name, 1 in 8 to validation) so the split is
the same on every machine and near-duplicate viewpoint pairs (aloeL/aloeR, ...) never straddle it.
Patch rules from Eigen et al. 2013: clean variance >= 0.001 and, for dirt, >= 1 px with α >= 0.03.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from streamer.errors import ConfigError, looked_in
from streamer.preprocess.color import IMAGE_SUFFIXES, read_rgb8
from streamer.synth import DirtParams, corrupt
from streamer.train.negatives import HardNegatives, paste_sign

MIN_CLEAN_VAR = 0.001  # Eigen et al.: a training patch's clean variance is at least this
# Eigen et al.: a dirt patch has ≥ 1 px with α ≥ this. Ours, the same rule for drops: a raindrop
# patch is cut over a drop (mask ≥ this); a region holds ~1 drop, so a random window of it often
# held none, a clean patch labelled "raindrop" (docs/model-log.md E13).
MIN_MASK = 0.03
# near-duplicate viewpoints listed in shared/data/LICENSES.md share a group
_PAIR = re.compile(r"(aloe)[LR]|(leuven)[AB]|(graf)[13]|(aero)[13]|(motorcycle)[-_](left|right)")


def group_of(path: Path) -> str:
    m = _PAIR.search(path.stem)
    return next(g for g in m.groups() if g) if m else path.stem


def is_validation(path: Path, every: int = 8) -> bool:
    digest = hashlib.sha256(group_of(path).encode()).digest()
    return digest[0] % every == 0


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        raise ConfigError(f"{folder}: a file, not a folder; give the folder of clean images")
    if not folder.is_dir():
        raise ConfigError(f"{folder}: image folder not found{looked_in(folder)}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"{folder}: no {'/'.join(sorted(IMAGE_SUFFIXES))} images in it")
    return files


def split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    train = [p for p in files if not is_validation(p)]
    val = [p for p in files if is_validation(p)]
    return train, val


def read_rgb(path: Path) -> np.ndarray:
    """float32 H×W×3 RGB in [0,1]; grayscale is expanded (some training photos are gray)."""
    return read_rgb8(path, ConfigError).astype(np.float32) / 255.0


@contextmanager
def one_opencv_thread() -> Iterator[None]:
    """Start synthesis workers inside this: they inherit one OpenCV thread each. OpenCV's pthreads
    pool ignores OMP_NUM_THREADS and runs one thread per core in every worker (15 workers on a
    16-core GPU host: 240 threads). Setting it in the worker instead deadlocks: the forked child
    waits for the parent's pool threads, which it does not have (session 15)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@dataclass(frozen=True)
class PatchMix:
    """Share of each corruption in a batch; the rest are clean (teaches: leave clean alone)."""

    dirt: float = 0.45
    raindrop: float = 0.2
    streaks: float = 0.2

    def draw(self, rng: np.random.Generator) -> str | None:
        r = rng.random()
        for kind, share in (("dirt", self.dirt), ("raindrop", self.raindrop),
                            ("streaks", self.streaks)):
            if r < share:
                return kind
            r -= share
        return None


class PatchStream(torch.utils.data.IterableDataset):
    """Endless seeded stream of (corrupted, clean) C×H×W float tensors.

    ``reuse``: patches cut from each synthesised region. Synthesis (dirt above all) costs far more
    than a training step on a GPU; cutting a few patches from each region keeps the GPU fed.
    ``clean_hard`` / ``signs``: hard negatives (``streamer.train.negatives``), off by default.
    Dirt patches follow the paper (≥ 1 px with α ≥ 0.03); raindrop patches are placed over a drop.
    """

    def __init__(self, images: list[np.ndarray], patch: int, seed: int, mix: PatchMix,
                 region: tuple[int, int] = (160, 384), frame_px: tuple[int, int] | None = None,
                 reuse: int = 1, clean_hard: float = 0.0, signs: float = 0.0,
                 with_mask: bool = False, mask_kinds: tuple[str, ...] | None = None,
                 hard_kinds: tuple[str, ...] = ("panels",),
                 hard: dict[str, HardNegatives] | None = None, dirt: DirtParams | None = None,
                 dirt_mask_alpha: float = 0.0) -> None:
        self.images, self.patch, self.seed, self.mix, self.region = images, patch, seed, mix, region
        self.frame_px = frame_px  # None: corruption sized to the region itself
        self.reuse, self.clean_hard, self.signs = reuse, clean_hard, signs
        self.hard_kinds = hard_kinds  # which mined negatives (negatives.HARD_SCORES), drawn evenly
        # built here, before the workers fork (they share the tables); another stream's may be passed
        self.hard = hard if hard is not None or not clean_hard else {
            kind: HardNegatives(images, patch, kind, min_var=MIN_CLEAN_VAR) for kind in hard_kinds}
        self.with_mask = with_mask  # also yield the corruption mask (1×H×W; zeros when clean)
        self.mask_kinds = mask_kinds  # None: every corruption's mask; else zeros for the others
        self.dirt = dirt  # None: the benchmark's dirt ranges
        # > 0 with mask_kinds leaving dirt out: dirt's mask is α >= this (near-opaque flecks), not zeros
        self.dirt_mask_alpha = dirt_mask_alpha

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        rng = np.random.default_rng([self.seed, worker])
        while True:
            yield from self.samples(rng)

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.samples(rng)[0]

    def samples(self, rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        """Up to ``reuse`` patches of one corrupted region (at least one): (dirty, clean[, mask])."""
        p = self.patch
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # noqa: E731
        no_mask = np.zeros((p, p, 1), np.float32)
        item = lambda d, c, m: (to_t(d), to_t(c)) + ((to_t(m),) if self.with_mask else ())  # noqa: E731
        if self.clean_hard and rng.random() < self.clean_hard:  # before the mix, which shares the rest
            kinds = self.hard_kinds  # one kind draws nothing: older configs keep their stream
            hard_kind = kinds[rng.integers(len(kinds))] if len(kinds) > 1 else kinds[0]
            clean_p = self.hard[hard_kind].draw(rng)
            return [item(clean_p, clean_p, no_mask)]
        for _ in range(50):
            img = self.images[rng.integers(len(self.images))]
            h, w = img.shape[:2]
            side = int(min(rng.integers(*self.region, endpoint=True), h, w))
            if side < p:
                continue
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            region = img[y:y + side, x:x + side]
            if rng.random() < 0.5:
                region = region[:, ::-1]
            region = np.ascontiguousarray(region)
            if self.signs and rng.random() < self.signs:
                region = paste_sign(region, rng)
            kind = self.mix.draw(rng)
            frame = float(rng.uniform(*self.frame_px)) if self.frame_px else None
            dirty, mask = (region, None) if kind is None else corrupt(region, kind, rng, frame_px=frame, dirt=self.dirt)
            keep = self.mask_kinds is None or kind in self.mask_kinds
            mask_out = mask if keep else None
            if kind == "dirt" and not keep and self.dirt_mask_alpha:
                mask_out = (mask >= self.dirt_mask_alpha).astype(np.float32)
            out = []
            drops = np.argwhere(mask[..., 0] >= MIN_MASK) if kind == "raindrop" else None
            for _ in range(self.reuse):
                if drops is not None and len(drops):  # a window over a drop, else it is a clean patch
                    dy, dx = drops[rng.integers(len(drops))]
                    py = rng.integers(max(0, dy - p + 1), min(dy, side - p) + 1)
                    px = rng.integers(max(0, dx - p + 1), min(dx, side - p) + 1)
                else:
                    py, px = rng.integers(0, side - p + 1), rng.integers(0, side - p + 1)
                clean_p = region[py:py + p, px:px + p]
                if clean_p.var() < MIN_CLEAN_VAR:
                    continue
                if kind == "dirt" and not (mask[py:py + p, px:px + p] >= MIN_MASK).any():
                    continue
                out.append(item(dirty[py:py + p, px:px + p], clean_p,
                                no_mask if mask_out is None else mask_out[py:py + p, px:px + p]))
            if out:
                return out
        raise ConfigError("no training patch passed the variance/α rules in 50 tries")


def validation_set(
    images: list[np.ndarray], kinds: tuple[str, ...], seed: int, crop: int, multiple: int = 8,
    frame_px: float | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Fixed (kind, corrupted, clean) triples: centre crops, seeded per image and kind."""
    out = []
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        ch, cw = min(crop, h) // multiple * multiple, min(crop, w) // multiple * multiple
        y, x = (h - ch) // 2, (w - cw) // 2
        clean = np.ascontiguousarray(img[y:y + ch, x:x + cw])
        for k, kind in enumerate(kinds):
            rng = np.random.default_rng([seed, i, k])
            dirty = clean if kind == "clean" else corrupt(clean, kind, rng, frame_px=frame_px)[0]
            out.append((kind, dirty, clean))
    return out
