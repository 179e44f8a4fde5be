"""What every source is: an iterable of Frames that can be closed from any thread."""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from streamer.frame import Frame


@runtime_checkable
class Source(Protocol):
    """Live sources reconnect inside ``__iter__``; files end the iteration at EOF."""

    name: str
    live: bool  # True: latest frame wins (drop old ones); False: never drop

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...  # idempotent, from any thread
