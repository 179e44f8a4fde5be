"""What every sink is: takes Frames, flushes on close so outputs stay playable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from streamer.frame import Frame


@runtime_checkable
class Sink(Protocol):
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...  # flush encoder; file stays playable; idempotent; resumes if interrupted


@dataclass(frozen=True)
class Delivery:
    """What a push output (RTSP push, ``delivery()``) got through over a run. A push never stops
    the run (frames are dropped, the connect retried), so only this tells a server that was never
    there from a good run. Outputs that listen (the view, rtsp-serve) have none: nobody
    watching is normal for a server."""

    output: str  # "RTSP output rtsp://host/path", password left out
    frames: int  # handed to it by the run
    delivered: int  # went out to the server
    error: str = ""  # why it last failed to connect or send ("" = it never did)

    @property
    def failed(self) -> bool:
        """Frames came, not one went out, and a connect failed. A run that ended (or was stopped:
        Ctrl-C in the first second of a camera job) while the first connect was still under way
        has no verdict on the server, so it is a summary line, not the run's error."""
        return self.frames > 0 and self.delivered == 0 and bool(self.error)

    def summary(self) -> str:
        """One line for the run summary (or its error)."""
        if self.failed:
            return f"{self.output} never connected ({self.error}): 0 of {self.frames} frames delivered"
        if self.delivered == 0 and self.frames > 0:
            return f"{self.output}: 0 of {self.frames} frames delivered (the run ended before it connected)"
        lost = f" (last error: {self.error})" if self.error else ""
        return f"{self.output}: {self.delivered} of {self.frames} frames delivered{lost}"


def deliveries(sinks: Iterable[Sink]) -> list[Delivery]:
    """The ``Delivery`` of each push output among ``sinks`` (after they are closed: final counts)."""
    return [sink.delivery() for sink in sinks if callable(getattr(sink, "delivery", None))]  # type: ignore[attr-defined]


def write_order(sinks: list[Sink]) -> list[Sink]:
    """Recordings last: a network sink that fails on the first frame (an RTSP server that cannot
    serve its path) then stops the run before a file holds that one frame (a 1-frame segment that
    would count against `keep`). Within each group the configured order stands."""
    return sorted(sinks, key=lambda sink: bool(getattr(sink, "records", False)))


def close_sinks(sinks: Iterable[Sink], on_error: Callable[[Exception], None]) -> bool:
    """Close each sink, the last step of a run. A Ctrl-C meanwhile is noted and that sink's close
    tried again (a file sink resumes where it stopped: the file is finished, not cut short); a
    third goes through, the way out of a close that hangs, as with the CLI's ``stop_signals``.
    Other errors go to ``on_error`` and the next sinks are still closed. Returns whether Ctrl-C came."""
    interrupts = 0
    for sink in sinks:
        while True:
            try:
                sink.close()
                break
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts >= 3:
                    raise
            except Exception as exc:  # noqa: BLE001  keep closing the others
                on_error(exc)
                break
    return interrupts > 0
