"""The training streams a config asks for, and whether they can keep a device fed.

On a GPU the network step is cheap and the CPU synthesis of patches sets the pace: session 15's
H100 ran at 2–3 steps/s, mostly idle, until a profile of these streams found the cause (hard
negatives scored window by window, docs/gpu-training.md). ``streamer train --data-rate``
measures them, one process each, before a lease is spent on a starved run.
"""

from __future__ import annotations

import time

import numpy as np

from streamer.config import TrainConfig
from streamer.synth import DirtParams
from streamer.train.data import PatchMix, PatchStream, list_images, one_opencv_thread, read_rgb, split

POOL_SEED = 1_000_003  # the clean-candidate pool's stream is seeded apart from the main one


def pool_workers(cfg: TrainConfig) -> int:
    """Worker processes for ``clean_ohem``'s candidates besides ``workers``: a clean candidate
    costs ~⅓ of a corrupted patch (session 17), so ~workers·ohem/(2·batch) keep pace with room
    (one on a CPU; several on a GPU host)."""
    return min(cfg.workers, max(1, round(cfg.workers * cfg.clean_ohem / (2 * cfg.batch))))


def build_streams(cfg: TrainConfig, images: list[np.ndarray], step: int = 0, *, with_mask: bool = False,
                  mask_kinds: tuple[str, ...] | None = None) -> tuple[PatchStream, PatchStream | None]:
    """The (corrupted, clean) stream and, with ``clean_ohem``, the clean-candidate pool (sharing
    the hard-negative tables). Seeded from ``step`` so a resumed run draws new patches."""
    stream = PatchStream(images, cfg.patch, cfg.seed + step, PatchMix(cfg.mix_dirt, cfg.mix_raindrop, cfg.mix_streaks),
                         region=tuple(cfg.region), frame_px=tuple(cfg.frame_px), reuse=cfg.patches_per_region,
                         clean_hard=cfg.clean_hard, hard_kinds=tuple(cfg.clean_hard_kinds),
                         signs=cfg.scene_signs, with_mask=with_mask, mask_kinds=mask_kinds,
                         dirt=DirtParams(**cfg.dirt) if cfg.dirt else None,
                         dirt_mask_alpha=cfg.drop_dirt_alpha)
    if not cfg.clean_ohem:
        return stream, None
    pool = PatchStream(images, cfg.patch, cfg.seed + POOL_SEED + step, PatchMix(0, 0, 0), region=tuple(cfg.region),
                       clean_hard=cfg.clean_hard, hard_kinds=tuple(cfg.clean_hard_kinds),
                       signs=cfg.scene_signs, hard=stream.hard)
    return stream, pool


def _rate(stream: PatchStream, seconds: float) -> float:
    """Patches per second one process draws from ``stream`` (one OpenCV thread, like a worker)."""
    rng, n = np.random.default_rng(0), 0
    with one_opencv_thread():
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            n += len(stream.samples(rng))
        return n / (time.perf_counter() - start)


def data_rate(cfg: TrainConfig, seconds: float = 10.0) -> dict:
    """Patches/s of each stream per worker, and the step rate ``workers`` (and the pool's
    workers) can feed when each has a core: compare it with the device's step rate."""
    train_files, _ = split(list_images(cfg.data))
    stream, pool = build_streams(cfg, [read_rgb(p) for p in train_files])
    main = _rate(stream, seconds)
    report = {"patch": cfg.patch, "batch": cfg.batch, "workers": cfg.workers,
              "patches_per_s_per_worker": round(main, 1),
              "fed_steps_per_s": round(max(cfg.workers, 1) * main / cfg.batch, 1)}
    if pool is not None:
        candidates = _rate(pool, seconds)
        pool_fed = pool_workers(cfg) * candidates / cfg.clean_ohem
        report |= {"clean_ohem": cfg.clean_ohem, "pool_workers": pool_workers(cfg),
                   "pool_candidates_per_s_per_worker": round(candidates, 1),
                   "fed_steps_per_s": round(min(report["fed_steps_per_s"], pool_fed), 1)}
    return report
