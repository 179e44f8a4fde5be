"""What every sink is: takes Frames, flushes on close so outputs stay playable."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streamer.frame import Frame


@runtime_checkable
class Sink(Protocol):
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...  # flush encoder; file stays playable; idempotent


def write_order(sinks: list[Sink]) -> list[Sink]:
    """Recordings last: a push or server sink that fails on the first frame (a missing RTSP
    server) then stops the run before a file holds that one frame (a 1-frame segment that would
    count against `keep`). Within each group the configured order stands."""
    return sorted(sinks, key=lambda sink: bool(getattr(sink, "records", False)))
