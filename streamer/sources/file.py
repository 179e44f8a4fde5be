"""Video files: decoded in order, never dropped, PTS kept from the container."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from streamer.errors import SourceError, looked_in
from streamer.frame import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What a sink or a progress bar needs to know before the first frame."""

    fps: float
    frames: int  # 0 when the container does not say
    time_base: tuple[int, int]
    has_audio: bool


def probe(path: str | Path) -> VideoInfo:
    """Open ``path`` once to check it is a video (with a size) and read its timing."""
    path = Path(path)
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give a video file (`streamer restore FOLDER` cleans a folder)")
    if not path.is_file():  # config paths are relative to where streamer runs, not to the config
        raise SourceError(f"{path}: file not found{looked_in(path, ': relative paths start from there')}")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if ctx is None:  # PyAV gives no context for a codec FFmpeg cannot decode
                raise SourceError(f"{path}: video codec not supported (no decoder in this FFmpeg); "
                                  "convert it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
            if not ctx.width or not ctx.height:
                raise SourceError(f"{path}: video stream has no size; the file is damaged")
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            tb = stream.time_base or Fraction(1, 90000)
            if stream.duration is not None:
                duration = float(stream.duration * tb)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            frames = int(stream.frames or round(duration * float(rate)))
            return VideoInfo(float(rate), frames, (tb.numerator, tb.denominator), bool(container.streams.audio))
    except PermissionError as exc:  # PyAV's is an FFmpegError too: not a damaged file
        raise SourceError(f"{path}: no permission to read it ({exc.strerror}); check its owner and "
                          "mode, or run as a user who may read it") from exc
    except av.FFmpegError as exc:
        raise SourceError(f"{path}: not a readable video ({exc.strerror or exc})") from exc


class FileSource:
    """Frames of a file in decode order. ``loop`` restarts at the end with PTS still increasing;
    ``realtime`` paces frames at their PTS and makes the source behave like a camera (live)."""

    def __init__(self, path: str | Path, name: str = "main", *, loop: bool = False,
                 realtime: bool = False) -> None:
        self.path = Path(path)
        self.name = name
        self.loop = loop
        self.realtime = realtime
        self.live = realtime
        self.info = probe(self.path)
        self._closed = threading.Event()

    @property
    def total_frames(self) -> int | None:
        """For progress bars: known frame count, None when looping or unknown."""
        return None if self.loop or not self.info.frames else self.info.frames

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        offset_s = 0.0  # added to PTS on each pass of a loop, so time keeps going forward
        start_s: float | None = None
        t0 = time.monotonic()
        frame_s = 1.0 / self.info.fps if self.info.fps else 0.04
        while not self._closed.is_set():
            first_s = last_s = None
            for pts_s, image, decode_s in self._decode():
                first_s = pts_s if first_s is None else first_s
                start_s = pts_s if start_s is None else start_s
                last_s = pts_s
                out_s = pts_s + offset_s
                if self.realtime:
                    wait = t0 + (out_s - start_s) - time.monotonic()
                    if wait > 0 and self._closed.wait(wait):
                        return
                yield Frame(image, out_s, index, self.name, self.info.time_base, time.monotonic(),
                            decode_s=decode_s)
                index += 1
                if self._closed.is_set():
                    return
            if not self.loop or first_s is None or last_s is None:
                return
            offset_s += last_s - first_s + frame_s

    def _decode(self) -> Iterator[tuple[float, "object", float]]:
        """(pts_s, RGB image, seconds spent decoding it), packet by packet, so a damaged packet
        (bit rot on a dashcam card, a torn write) costs its frames, as in ffmpeg or a player, not
        the rest of the file. A packet that gives no frame yet (threaded decoding) adds its time
        to the next frame's."""
        damaged, last_error = 0, ""
        n = 0
        spent_s = 0.0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                tb = float(stream.time_base or Fraction(1, 90000))
                for packet in container.demux(stream):
                    t0 = time.perf_counter()
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as exc:  # InvalidDataError and kin: this packet only
                        damaged += 1
                        last_error = exc.strerror or str(exc)
                        if damaged == 1:
                            log.warning("%s: damaged video data after frame %d skipped (%s)",
                                        self.path, n, last_error)
                        continue
                    spent_s += time.perf_counter() - t0
                    for frame in frames:
                        pts_s = frame.pts * tb if frame.pts is not None else n / (self.info.fps or 25.0)
                        n += 1
                        t0 = time.perf_counter()
                        image = _upright(frame)
                        decode_s, spent_s = spent_s + time.perf_counter() - t0, 0.0
                        yield pts_s, image, decode_s
                        if self._closed.is_set():
                            return
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: decoding failed ({exc.strerror or exc}); "
                              "the file may be truncated or damaged") from exc
        if damaged and not n:
            raise SourceError(f"{self.path}: decoding failed ({last_error}); no frame could be decoded")
        if damaged:
            log.warning("%s: %d damaged packet(s) skipped, %d frames decoded", self.path, damaged, n)

    def close(self) -> None:
        self._closed.set()


def _upright(frame: "av.VideoFrame") -> "object":
    """RGB pixels as they are meant to be seen: a phone clip or a camera mounted on its side
    stores a display rotation, which players (and ffmpeg when it re-encodes) apply; so do we, so
    the network sees an upright scene and the output plays upright with no rotation of its own."""
    image = frame.to_ndarray(format="rgb24")
    turns = round(getattr(frame, "rotation", 0) / 90) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image
