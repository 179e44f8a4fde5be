"""Video files: H.264 in fragmented MP4 (or MKV), so a killed run still leaves a playable file.

A fragment ends at every keyframe (``encoder.keyframe_s``); after SIGKILL the file decodes up
to its last complete fragment. PTS and time base come from the input; ``close`` flushes.
Fragmented MP4 has no edit list, so its timeline starts at 0 (MKV keeps the first PTS as is);
``fragmented=False`` writes a classic MP4 for finite jobs that rename a finished temp file.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamer.config import EncoderConfig
from streamer.errors import SinkError, check_output
from streamer.frame import Frame
from streamer.sinks.encode import VideoEncoder, compose

log = logging.getLogger(__name__)
AUDIO_TAIL_S = 0.5  # audio kept past the last frame's time at close

FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".mkv": "matroska"}
# flush_packets: hand each fragment (MKV: cluster) to the OS at once, so a SIGKILL loses at most one
FLUSHED = {"flush_packets": "1"}
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", **FLUSHED}


class FileSink:
    records = True  # a file on disk: written after the network sinks (sinks.base.write_order)

    def __init__(self, path: str | Path, *, encoder: EncoderConfig | None = None,
                 side_by_side: bool = False, fps: float = 0.0, audio_from: str | Path | None = None,
                 fmt_suffix: str | None = None, fragmented: bool = True) -> None:
        self.path = Path(path)
        self.fragmented = fragmented  # False: one moov at the end (exact start PTS; finite jobs)
        suffix = (fmt_suffix or self.path.suffix).lower()
        if suffix not in FORMATS:
            raise SinkError(f"{self.path}: unknown video suffix {suffix!r}; use .mp4 or .mkv")
        self.format = FORMATS[suffix]
        self.encoder_cfg = encoder or EncoderConfig()
        self.side_by_side = side_by_side
        self.fps = fps
        self.audio_from = Path(audio_from) if audio_from else None
        self.frames = 0
        self._container: Any = None
        self._video: VideoEncoder | None = None
        self._audio_in: Any = None
        self._audio_packets: Any = None
        self._audio_out: Any = None
        self._pending_audio: Any = None
        self._closed = False
        self._last_pts_s = 0.0
        check_output(self.path, error=SinkError)  # now, not at the first frame after the model and camera

    def _open(self, frame: Frame, width: int, height: int) -> None:
        options = (dict(FRAGMENTED) if self.fragmented else {}) if self.format == "mp4" else dict(FLUSHED)
        try:
            self._container = av.open(str(self.path), "w", format=self.format, options=options)
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"{self.path}: cannot write ({getattr(exc, 'strerror', None) or exc}); "
                            "check the folder exists and is writable") from exc
        tb = Fraction(*frame.time_base) if frame.time_base else Fraction(1, 90000)
        self._video = VideoEncoder(self._container, width, height, cfg=self.encoder_cfg,
                                   fps=self.fps or 25.0, time_base=tb)
        if self.audio_from is not None:
            self._open_audio()

    def _open_audio(self) -> None:
        """Copy the input's first audio stream packet for packet (no re-encode)."""
        self._audio_in = av.open(str(self.audio_from))
        if not self._audio_in.streams.audio:
            self._audio_in.close()
            self._audio_in = None
            return
        ain = self._audio_in.streams.audio[0]
        try:
            self._audio_out = self._container.add_stream_from_template(ain)
        except (ValueError, av.FFmpegError) as exc:  # e.g. pcm_mulaw (IP cameras) cannot go into .mp4
            log.warning("%s: sound not copied (%s %s cannot go into %s: %s)", self.path, ain.codec_context.name,
                        self.audio_from.name, self.path.suffix, exc)
            self._audio_in.close()
            self._audio_in = None
            return
        self._audio_packets = (p for p in self._audio_in.demux(ain) if p.dts is not None)

    def _mux_audio(self, until_s: float | None) -> None:
        """Audio packets up to ``until_s`` (all when None), interleaved with the video."""
        while self._audio_packets is not None:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                self._audio_packets = None
                return
            if until_s is not None and packet.pts is not None and float(packet.pts * packet.time_base) > until_s:
                self._pending_audio = packet
                return
            packet.stream = self._audio_out
            self._container.mux(packet)

    def write(self, frame: Frame) -> None:
        image = compose(frame, self.side_by_side)
        try:
            if self._video is None:
                self._open(frame, image.shape[1], image.shape[0])
            video: VideoEncoder = self._video  # type: ignore[assignment]
            video.encode(image, frame.pts_s)
            self._mux_audio(frame.pts_s)
            self._last_pts_s = frame.pts_s
        except (av.FFmpegError, OSError) as exc:
            raise SinkError(f"{self.path}: writing frame {frame.index} failed "
                            f"({getattr(exc, 'strerror', None) or exc})") from exc
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; safe to call twice. Cut short by Ctrl-C, it
        leaves the file open, so a second call resumes where it stopped (``close_sinks`` makes
        it): closing at once would drop the frames still in the encoder."""
        if self._closed:
            return
        try:
            if self._video is not None:
                self._video.flush()
                # the audio's tail up to the last frame (+0.5 s): all of it for a whole file, not
                # minutes of sound over a frozen picture after a stop or --max-frames
                self._mux_audio(self._last_pts_s + AUDIO_TAIL_S)
        except KeyboardInterrupt:
            raise  # left open: the next close() resumes the flush
        except (av.FFmpegError, OSError) as exc:
            self._finish()
            raise SinkError(f"{self.path}: finishing the file failed ({exc})") from exc
        except BaseException:
            self._finish()  # any other failure: write the trailer of what is there, then report it
            raise
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        container, self._container = self._container, None
        audio_in, self._audio_in = self._audio_in, None
        try:
            if container is not None:
                container.close()
        finally:
            if audio_in is not None:
                audio_in.close()

    def __enter__(self) -> "FileSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
