"""Live web view sink (`--sink view`): a grid of cameras, before/after, live stats, metrics, health.

Wiring (for ``open_sink``)::

    ViewSink(stats: RunStats | None = None, host: str = "127.0.0.1", port: int = 8080,
             token: str | None = None, jpeg_quality: int = 80, title: str = "streamer")

- ``stats``: the run's ``RunStats``; ``/metrics``, ``/healthz`` and the stats panel read it. The
  pipeline keeps updating it (``on_up(cam, True)`` once a camera delivers, or ``/healthz`` says 503).
- ``token``: falls back to ``$STREAMER_TOKEN``; binding a non-loopback host without one raises
  ``ConfigError`` in the constructor. The server is listening when the constructor returns
  (``port=0`` picks a free port; see ``.port`` / ``.url``); ``close()`` stops it.
- Frames: ``image`` is streamed as "after", ``original`` (when set) as "before"; ``source`` names
  the camera tile; ``captured_s`` gives the capture->display latency shown per camera.

Sink specs (``open_view_sink``): ``view`` (127.0.0.1:8080), ``view:PORT``, ``view:HOST:PORT``,
``view://HOST:PORT``, ``view://[IPv6]:PORT``. The page gets JPEG frames and stats over one WebSocket
(``/ws``); other tools get MJPEG over HTTP (``/stream``). See docs/live-view.md, also for why not WebRTC yet.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from streamer.errors import ConfigError
from streamer.sinks.view.sink import ViewSink
from streamer.stats import RunStats

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(host) and all(part.isalnum() for part in host.replace("-", ".").split("."))


def parse_view_spec(spec: str) -> tuple[str, int]:
    """``view``, ``view:PORT``, ``view:HOST:PORT`` or ``view://HOST[:PORT]`` -> (host, port)."""
    rest = spec.removeprefix("view")
    if not rest:
        return DEFAULT_HOST, DEFAULT_PORT
    if rest.startswith("://"):  # URL form: the host is required, the port optional
        host, _, port = rest[3:].rpartition(":") if rest[3:].rpartition(":")[2].isdigit() else (rest[3:], "", "")
        port = port or str(DEFAULT_PORT)
    elif rest.startswith(":"):
        host, _, port = rest[1:].rpartition(":")
    else:
        host, port = "", "x"
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not _valid_host(host):
        raise ConfigError(f"sink {spec!r}: expected view, view:PORT or view://HOST:PORT, e.g. view://0.0.0.0:8080")
    return host, int(port)


def open_view_sink(spec: str, *, stats: RunStats | None = None, **options: Any) -> ViewSink:
    """``open_sink``'s entry. Encoder, fps and side_by_side do not apply (the page has its own split);
    ``options`` may carry token, title, jpeg_quality."""
    host, port = parse_view_spec(spec)
    for unused in ("encoder", "side_by_side", "fps", "audio_from"):
        options.pop(unused, None)
    return ViewSink(stats=stats, host=host, port=port, **options)


__all__ = ["ViewSink", "open_view_sink", "parse_view_spec"]
