"""USB cameras through V4L2 (PyAV ``format="v4l2"``); an unplugged camera is reopened by path."""

from __future__ import annotations

from typing import Any

import av

from streamer.sources.live import LiveSource


class UsbSource(LiveSource):
    kind = "USB camera"
    demuxer: str | None = "v4l2"  # None: FFmpeg probes the path (tests use a FIFO as the camera)

    def __init__(self, device: str, name: str = "main", *, size: str | None = None,
                 fps: float | None = None, input_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(device, name, **kwargs)
        self.options: dict[str, str] = {}
        if size:
            self.options["video_size"] = size
        if fps:
            self.options["framerate"] = f"{fps:g}"
        if input_format:
            self.options["input_format"] = input_format

    def _open(self) -> Any:
        return av.open(self.url, format=self.demuxer, options=self.options,
                       timeout=(self.timeout_s, self.timeout_s))
