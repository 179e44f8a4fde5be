"""streamer: real-time removal of dirt, raindrops and rain streaks from camera video.

``streamer.run(cfg)`` (a camera or file job), ``streamer.restore(inputs, outdir)`` (files) and
``streamer.Cleaner`` (one frame at a time, in your own capture loop) are the library entry points;
they are imported on first use so ``import streamer`` stays light.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["Cleaner", "restore", "run"]


@functools.cache
def _version() -> str:
    """pyproject's version, as installed; read on first use (importlib.metadata costs ~70 ms)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streamer")
    except PackageNotFoundError:  # a source tree never installed (PYTHONPATH=.)
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name == "Cleaner":
        from streamer.cleaner import Cleaner

        return Cleaner
    if name in __all__:
        from streamer import api

        return getattr(api, name)
    raise AttributeError(f"module 'streamer' has no attribute {name!r}")
