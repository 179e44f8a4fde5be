"""Files shipped inside the package (a wheel holds copies; in the repo streamer/assets and
configs link to the top-level folders): the demo clip and the example run configs. The README's
and docs/api.md's relative paths (`configs/demo.yaml`, `assets/demo.mp4`) mean these copies where
the working folder has no such file, so the demo job runs from any folder and from a
pip-installed wheel as it does in the repo. A warning says so: a user's own `configs/x.yaml`
missing from the working folder must not pass silently for streamer's example of that name.
Training configs are not examples (their data/weights/out paths are the checkout's): never."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
FOLDERS = ("assets", "configs")


def shipped(path: str | Path) -> Path:
    """``path``, or streamer's own copy of it when ``path`` is a relative ``assets/…`` or
    ``configs/…`` path (not ``configs/train_*``) the working folder lacks and the package has."""
    path = Path(path)
    if path.is_absolute() or not path.parts or path.parts[0] not in FOLDERS or path.exists():
        return path
    if path.parts[0] == "configs" and path.name.startswith("train_"):
        return path
    copy = PACKAGE / path
    if not copy.exists():
        return path
    log.warning("%s: not in %s; using the copy shipped with streamer (%s)", path, Path.cwd(), copy)
    return copy
