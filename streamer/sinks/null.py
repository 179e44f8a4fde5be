"""Discards frames (benchmarks, dry runs); counts them so tests can check the path."""

from __future__ import annotations

from streamer.frame import Frame


class NullSink:
    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        pass
