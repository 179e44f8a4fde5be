"""Polling for tests that watch real processes and servers."""

from __future__ import annotations

import time
from typing import Callable


def wait_until(cond: Callable[[], object], timeout_s: float = 30.0, poll_s: float = 0.05) -> bool:
    """True as soon as ``cond()`` is truthy, False after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll_s)
    return False
