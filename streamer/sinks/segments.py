"""Loop recording: a new file every ``segment_s`` seconds of video, the oldest deleted past ``keep``.

What a dashcam or a camera recorder does: a disk that never fills, and files small enough to copy
off after an incident. Each segment is a ``FileSink`` of its own (fragmented MP4, so the one being
written stays playable after a crash), named ``<stem>-<YYYYmmdd-HHMMSS>-<n>.mp4`` by the wall
clock at its start (names sort by time). Cuts fall on the first frame at or past the boundary, and
that frame opens the next file, so each segment starts with a keyframe; a timeline that jumps
back (a camera that restarted its clock on reconnect) starts a new segment too. Every segment's
timeline starts at 0 (MKV would otherwise keep the camera's running PTS, and players would show
a 5-minute file as hours long); the name carries the wall-clock start.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import re
import time
from pathlib import Path

import av

from streamer.config import EncoderConfig
from streamer.errors import SinkError
from streamer.frame import Frame
from streamer.sinks.file import FileSink

log = logging.getLogger(__name__)


class SegmentedFileSink:
    records = True  # a file on disk: written after the network sinks (sinks.base.write_order)

    def __init__(self, path: str | Path, segment_s: float, *, keep: int = 0,
                 encoder: EncoderConfig | None = None, side_by_side: bool = False, fps: float = 0.0) -> None:
        self.path = Path(path)
        self.segment_s, self.keep = segment_s, keep
        self._file_kw = dict(encoder=encoder, side_by_side=side_by_side, fps=fps)
        self._pattern = re.compile(rf"{re.escape(self.path.stem)}-\d{{8}}-\d{{6}}-\d{{4}}{re.escape(self.path.suffix)}")
        self._current: FileSink | None = None
        self._start_pts = 0.0
        self.segments: list[Path] = []  # written by this sink, oldest first (deleted ones too)
        self._unreadable: set[Path] = set()  # earlier segments we could not read: left alone
        self.frames = 0
        FileSink(self.path, **self._file_kw)  # checks suffix and folder now, writes nothing

    def _name(self) -> Path:
        """The next segment's path; numbered past any file of the same second (a quick restart
        must neither overwrite a segment nor sort before it)."""
        prefix = f"{self.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-"
        taken = [int(p.stem[-4:]) for p in self.path.parent.glob(f"{glob.escape(prefix)}*")
                 if self._pattern.fullmatch(p.name)]
        n = max(len(self.segments), max(taken, default=-1) + 1)
        return self.path.with_name(f"{prefix}{n:04d}{self.path.suffix}")

    def write(self, frame: Frame) -> None:
        elapsed = frame.pts_s - self._start_pts  # < 0: the camera's clock restarted (reconnect)
        if self._current is None or not 0 <= elapsed < self.segment_s:
            self._roll(frame)
        start_at_zero = dataclasses.replace(frame, pts_s=frame.pts_s - self._start_pts)
        self._current.write(start_at_zero)  # type: ignore[union-attr]
        self.frames += 1

    def _roll(self, frame: Frame) -> None:
        if self._current is not None:
            self._current.close()
        name = self._name()
        self._current = FileSink(name, **self._file_kw)
        self._start_pts = frame.pts_s
        self.segments.append(name)
        log.info("recording %s", name)
        if self.keep:
            self._prune(name, first=len(self.segments) == 1)

    def _prune(self, current: Path, first: bool = False) -> None:
        """Delete the oldest segments of this name (earlier runs' too) beyond ``keep``; on the
        first roll, also earlier runs' segments without a frame, so they do not count."""
        ours = sorted(p for p in self.path.parent.iterdir() if self._pattern.fullmatch(p.name) and p != current
                      and p not in self._unreadable)
        if first:
            empty = {p: _frameless(p) for p in ours}
            for p, frameless in empty.items():
                if frameless:
                    self._delete(p)
                elif frameless is None:  # not ours to judge: neither deleted nor counted in keep
                    self._unreadable.add(p)
            ours = [p for p in ours if empty[p] is False]
        for old in ours[: max(0, len(ours) - self.keep + 1)]:
            self._delete(old)

    @staticmethod
    def _delete(old: Path) -> None:
        try:
            old.unlink()
        except OSError as exc:
            raise SinkError(f"{old}: cannot delete an old segment ({exc.strerror})") from exc

    def close(self) -> None:
        if self._current is not None:
            self._current.close()


def _frameless(path: Path) -> bool | None:
    """No video packet in it: a recorder killed (SIGKILL, power cut) between opening a segment
    and writing its first fragment leaves a header, or nothing. None: it could not be read
    (permissions, an I/O error), so whether it holds a recording is unknown."""
    try:
        if path.stat().st_size == 0:
            return True
        with av.open(str(path)) as container:
            return not any(packet.size for packet in container.demux(video=0))
    except (av.InvalidDataError, EOFError, IndexError):  # no header, cut before the first fragment, no video
        return True
    except (av.FFmpegError, OSError) as exc:  # EACCES, EIO: was treated as "no frames" and deleted
        log.warning("%s: cannot read this older segment (%s); left alone, not counted in keep", path,
                    getattr(exc, "strerror", None) or exc)
        return None
