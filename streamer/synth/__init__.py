"""Seeded corruption synthesis: dirt, raindrops, rain streaks. Offline only."""

from __future__ import annotations

from typing import Literal

import numpy as np

from streamer.errors import ConfigError
from streamer.synth.dirt import DirtParams, apply_dirt
from streamer.synth.raindrop import RaindropParams, apply_raindrops
from streamer.synth.streaks import StreakParams, apply_streaks

Corruption = Literal["dirt", "raindrop", "streaks"]
CORRUPTIONS: tuple[str, ...] = ("dirt", "raindrop", "streaks")


def corrupt(
    clean: np.ndarray, kind: str, rng: np.random.Generator, *, heavy: bool = False,
    frame_px: float | None = None, dirt: DirtParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one corruption to float32 H×W×3 [0,1]; returns (corrupted, per-pixel mask).

    ``frame_px`` is the long side of the frame this picture is a window of (default: its own).
    Stains, drops and streaks are sized relative to the frame, so a 256-px training crop of a
    1280-px frame gets the drops a 720p camera shows, not drops shrunk to the crop.
    ``dirt`` replaces the dirt's ranges (training ablations); ``heavy`` wins over it.
    """
    frame = float(frame_px or max(clean.shape[:2]))
    if kind == "dirt":
        return apply_dirt(clean, rng, DirtParams.heavy() if heavy else dirt or DirtParams(),
                          frame_px=frame)
    if kind == "raindrop":
        return apply_raindrops(clean, rng, RaindropParams.heavy() if heavy else RaindropParams(),
                               frame_px=frame)
    if kind == "streaks":
        return apply_streaks(clean, rng, StreakParams.heavy() if heavy else StreakParams(),
                             frame_px=frame)
    raise ConfigError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")


__all__ = ["CORRUPTIONS", "Corruption", "DirtParams", "corrupt"]
