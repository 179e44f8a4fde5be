"""Files shipped inside the package (a wheel holds copies; in the repo streamer/assets, calib and
configs link to the top-level folders): the demo clip, the example run configs, the calibration
frames. The README's and docs/api.md's relative paths (`configs/demo.yaml`, `assets/demo.mp4`)
mean these copies where the working folder has no such file, so the demo job runs from any
folder and from a pip-installed wheel as it does in the repo."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
FOLDERS = ("assets", "calib", "configs")


def shipped(path: str | Path) -> Path:
    """``path``, or streamer's own copy of it when ``path`` is a relative ``assets/…``,
    ``calib/…`` or ``configs/…`` path the working folder lacks and the package has."""
    path = Path(path)
    if path.is_absolute() or not path.parts or path.parts[0] not in FOLDERS or path.exists():
        return path
    copy = PACKAGE / path
    if not copy.exists():
        return path
    log.info("%s: not in %s; using the copy shipped with streamer (%s)", path, Path.cwd(), copy)
    return copy
