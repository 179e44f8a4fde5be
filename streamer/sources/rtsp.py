"""RTSP cameras over TCP (no UDP loss or NAT trouble), with open/read timeouts and reconnect."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import av

from streamer.sources.live import LiveSource, redact


class RtspSource(LiveSource):
    kind = "RTSP camera"

    def _open(self) -> Any:
        host = urlsplit(self.url).hostname
        if host:
            try:  # FFmpeg reports a failed lookup only as "Input/output error"
                socket.getaddrinfo(host, None)
            except socket.gaierror as exc:
                raise OSError(f"cannot resolve host {host}: {exc.strerror}") from exc
        us = str(int(self.timeout_s * 1e6))
        options = {"rtsp_transport": "tcp", "timeout": us, "fflags": "nobuffer"}
        # PyAV's own timeout also interrupts a blocking read of a silent, still-connected server
        return av.open(self.url, options=options, timeout=(self.timeout_s, self.timeout_s))

    def __repr__(self) -> str:
        return f"RtspSource({redact(self.url)!r}, name={self.name!r})"
