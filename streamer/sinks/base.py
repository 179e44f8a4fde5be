"""What every sink is: takes Frames, flushes on close so outputs stay playable."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streamer.frame import Frame


@runtime_checkable
class Sink(Protocol):
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...  # flush encoder; file stays playable; idempotent
