"""Every error the library raises on purpose; the CLI prints it as one line.

    StreamerError
    ├── ConfigError    bad YAML, unknown key, wrong type, impossible combination
    ├── SourceError    unreadable file, camera gone, RTSP unreachable
    ├── SinkError      output cannot be opened or written
    ├── WeightsError   missing, corrupt or mismatched weights
    ├── EngineError    ONNX/TensorRT file unusable here (version, GPU, model)
    └── ExportError    export request refused or failed

Messages say the thing, what is wrong and what to do, e.g.
``engines/fast.engine: built by TensorRT 8.6.1, this is 10.3.0; rebuild it on this device``.
"""

from __future__ import annotations

import difflib
import functools
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


class StreamerError(Exception):
    """Base of all expected failures: one line, no traceback needed."""


class ConfigError(StreamerError):
    """A configuration value or combination of options is not valid."""


class SourceError(StreamerError):
    """A video/image source cannot be opened or stopped delivering."""


class SinkError(StreamerError):
    """An output cannot be opened or written."""


class WeightsError(StreamerError):
    """Model weights are missing, corrupt or do not fit the architecture."""


class EngineError(StreamerError):
    """An inference engine file cannot be used on this machine."""


class ExportError(StreamerError):
    """An export request is refused or failed."""


def looked_in(path: str | Path, why: str = "") -> str:
    """`` (looked in CWD)`` for a relative path that was not found, else "": paths in configs and
    on the command line start from the working folder, not from the config's."""
    return "" if Path(path).is_absolute() else f" (looked in {Path.cwd()}{why})"


def check_output(path: Path, flag: str = "", *, folder: bool = False, example: str = "out",
                 error: type[StreamerError] = ConfigError, hint: str = "") -> None:
    """An output (a file, or with ``folder`` a folder) that cannot be written fails now, in one
    ``error`` line naming ``flag`` (and ending in ``hint``), not after minutes of work or at the
    first frame: no file where a folder must be, its folder made if need be, and a file written
    and removed there (a read-only mount, or /proc, passes permission checks)."""
    name, end = f"{flag} {path}".strip(), f"; {hint}" if hint else ""
    target = path if folder else path.parent
    if not folder and path.is_dir():
        raise error(f"{name}: is a folder; give a file name, e.g. {path / example}")
    blocking = next((p for p in (target, *target.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise error(f"{name}: {blocking} is a file, not a folder{end}")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{name}: cannot make the folder {target} ({exc.strerror or exc}){end}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".streamer-", suffix=".probe"):
            pass
    except OSError as exc:
        raise error(f"{name}: cannot write to the folder {target} ({exc.strerror or exc}){end}") from None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6,
                 aliases: Mapping[str, str] | None = None) -> str:
    """``did you mean 'x'?`` for the closest of ``choices`` to a misspelt ``word``, else "".
    ``aliases`` (other name -> choice) match too, and suggest the choice they stand for."""
    aliases = aliases or {}
    close = difflib.get_close_matches(word, [*choices, *aliases], n=1, cutoff=cutoff)
    return f"did you mean {aliases.get(close[0], close[0])!r}?" if close else ""


def install_extra(extra: str) -> str:
    """How to add an optional extra. streamer installs from its own folder: on PyPI the name
    `streamer` belongs to another project, so `pip install 'streamer[x]'` would fetch that. A
    wheel install has no folder to point at: there it names the extra's own requirements."""
    reqs = _wheel_extra_requirements(extra)
    if reqs:
        return "pip install " + " ".join(f"'{r}'" for r in reqs) + f" (the {extra} extra)"
    return f"pip install -e '.[{extra}]' in the streamer folder"


def _wheel_extra_requirements(extra: str) -> list[str]:
    """The requirements ``extra`` adds, from this streamer's installed (non-editable) metadata."""
    marker = re.compile(rf"""\s*;\s*extra\s*==\s*["']{re.escape(extra)}["']\s*$""")
    return [marker.sub("", r) for r in _wheel_requires() if marker.search(r)]


@functools.cache
def _wheel_requires() -> tuple[str, ...]:
    """This streamer's installed requirements; none for a checkout (editable or not installed:
    the metadata's code is elsewhere) or for PyPI's other `streamer`."""
    import importlib.metadata as md

    try:
        dist = md.distribution("streamer")
    except md.PackageNotFoundError:
        return ()
    if dist.read_text("INSTALLER") is None:  # a build's streamer.egg-info in the checkout, not an install
        return ()
    if Path(str(dist.locate_file("streamer/errors.py"))).resolve() != Path(__file__).resolve():
        return ()
    return tuple(dist.requires or ())
