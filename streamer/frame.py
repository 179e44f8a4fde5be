"""The one object every stage hands on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded picture with where and when it came from.

    ``pts_s`` comes from the container/stream, not from a counter, so output timing matches
    input timing. Gaps in ``index`` are frames dropped on purpose (live sources, latest wins).
    """

    image: np.ndarray  # H x W x 3, uint8, RGB
    pts_s: float
    index: int
    source: str = "main"
    time_base: tuple[int, int] | None = None  # container time base, kept for exact re-muxing
    captured_s: float = 0.0  # time.monotonic() at capture, for capture->output latency
    original: np.ndarray | None = field(default=None, compare=False)  # the input, for before|after
    # seconds the source spent decoding it (not waiting for it: pacing, the camera's socket), for
    # the `decode` stage; 0 when the source does not say
    decode_s: float = field(default=0.0, compare=False)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
