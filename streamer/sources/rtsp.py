"""RTSP cameras over TCP (no UDP loss or NAT trouble), with open/read timeouts and reconnect."""

from __future__ import annotations

from typing import Any

import av

from streamer.sources.live import LiveSource, redact


class RtspSource(LiveSource):
    kind = "RTSP camera"

    def _open(self) -> Any:
        us = str(int(self.timeout_s * 1e6))
        options = {"rtsp_transport": "tcp", "timeout": us, "fflags": "nobuffer"}
        # PyAV's own timeout also interrupts a blocking read of a silent, still-connected server
        return av.open(self.url, options=options, timeout=(self.timeout_s, self.timeout_s))

    def __repr__(self) -> str:
        return f"RtspSource({redact(self.url)!r}, name={self.name!r})"
