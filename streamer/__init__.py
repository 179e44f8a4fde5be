"""streamer: real-time removal of dirt, raindrops and rain streaks from camera video.

``streamer.run(cfg)`` (a camera or file job), ``streamer.restore(inputs, outdir)`` (files) and
``streamer.Cleaner`` (one frame at a time, in your own capture loop) are the library entry points;
they are imported on first use so ``import streamer`` stays light.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

__all__ = ["Cleaner", "restore", "run"]

if TYPE_CHECKING:  # type checkers and IDEs see the real names; the lazy __getattr__ is runtime only
    from streamer.api import restore, run
    from streamer.cleaner import Cleaner

    __version__: str


@functools.cache
def _version() -> str:
    """pyproject's version, as installed; read on first use (importlib.metadata costs ~70 ms)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streamer")
    except PackageNotFoundError:  # a source tree never installed (PYTHONPATH=.)
        return "0+unknown"


def _lazy(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name == "Cleaner":
        from streamer.cleaner import Cleaner

        return Cleaner
    if name in __all__:
        from streamer import api

        return getattr(api, name)
    raise AttributeError(f"module 'streamer' has no attribute {name!r}")


if not TYPE_CHECKING:  # to a type checker a module __getattr__ would make `streamer.Clenaer` fine (Any)
    __getattr__ = _lazy


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
