"""H.264 encoding shared by the file and RTSP sinks: RGB frame -> packets with exact PTS."""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from streamer.config import EncoderConfig
from streamer.frame import Frame


def compose(frame: Frame, side_by_side: bool) -> np.ndarray:
    """The picture to encode: the cleaned frame, or ``before | after``; padded to even size."""
    image = frame.image
    if side_by_side:
        before = frame.original if frame.original is not None else frame.image
        if before.shape != image.shape:
            before = cv2.resize(before, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
        image = np.concatenate([before, image], axis=1)
    h, w = image.shape[:2]
    if h % 2 or w % 2:  # 4:2:0 needs even sizes; repeat the last row/column
        image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return image


class VideoEncoder:
    """One H.264 stream in ``container``; frames carry their own PTS in ``time_base``."""

    def __init__(self, container: Any, width: int, height: int, *, cfg: EncoderConfig,
                 fps: float, time_base: Fraction, low_latency: bool = False) -> None:
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        gop = max(1, round(cfg.keyframe_s * float(rate)))
        options = {"preset": cfg.preset, "crf": str(cfg.crf)}
        if low_latency:
            options["tune"] = "zerolatency"
        self.stream = container.add_stream(cfg.codec, rate=rate, options=options)
        ctx = self.stream.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = time_base
        ctx.gop_size = gop
        # no B-frames: fragmented MP4 has no edit list, so reordering would shift every PTS by
        # the reorder delay; it also keeps encoder latency at zero frames
        ctx.max_b_frames = 0
        if cfg.threads:
            ctx.thread_count = cfg.threads
        self.stream.time_base = time_base
        self.container = container
        self.time_base = time_base
        self.frame_ticks = max(1, round(1 / (float(rate) * time_base)))
        self.last_pts: int | None = None
        self._tail: deque | None = None  # the drained encoder's packets not muxed yet

    def encode(self, image: np.ndarray, pts_s: float) -> int:
        """Encode and mux one frame; returns how many packets went out (0 while the encoder
        holds it back)."""
        h, w = image.shape[:2]
        # cv2's I420 conversion is BT.601 limited range like swscale's default, and much faster
        yuv = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        pts = round(pts_s / self.time_base)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # muxers need strictly increasing PTS
        vf.pts, vf.time_base, vf.duration = pts, self.time_base, self.frame_ticks
        self.last_pts = pts
        packets = 0
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
            packets += 1
        return packets

    def flush(self) -> None:
        """Drain the encoder (its lookahead holds the last frames); called again after Ctrl-C cut
        it short, it muxes what is left (the encoder can be drained only once)."""
        if self._tail is None:
            self._tail = deque(self.stream.encode(None))
        while self._tail:
            self.container.mux(self._tail.popleft())
