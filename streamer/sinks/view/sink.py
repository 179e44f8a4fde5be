"""ViewSink: the pipeline-facing half of the web view; the server runs in its own thread.

The server gets its own thread and asyncio loop so that a slow browser never blocks the
pipeline and the pipeline needs no asyncio. ``write`` only hands over a reference.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from streamer.errors import SinkError
from streamer.frame import Frame
from streamer.sinks.view.access import resolve_token, url_host
from streamer.sinks.view.feeds import FeedHub
from streamer.sinks.view.server import ViewApp
from streamer.stats import RunStats

log = logging.getLogger(__name__)
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0


class ViewSink:
    """Serve every camera's cleaned stream, before/after and live stats on ``http://host:port/``.

    Refuses (``ConfigError``) to bind beyond loopback without ``token`` (or ``$STREAMER_TOKEN``).
    ``port=0`` picks a free port; read the real one from ``port``/``url`` after construction.
    """

    def __init__(self, stats: RunStats | None = None, host: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, jpeg_quality: int = 80, title: str = "streamer") -> None:
        self.token = resolve_token("view sink", host, token)
        if not 1 <= jpeg_quality <= 100:
            raise SinkError(f"view sink: jpeg_quality {jpeg_quality} is outside 1..100; use e.g. 80")
        self.stats = stats if stats is not None else RunStats()
        self.host, self.port = host, port
        self.hub = FeedHub(jpeg_quality)
        self._view = ViewApp(self.hub, self.stats, self.token, title)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="view-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise SinkError(f"view sink: server did not start within {_START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            reason = getattr(self._error, "strerror", None) or self._error
            raise SinkError(f"view sink: cannot listen on {host}:{port} ({reason}); "
                            "choose another port or stop what uses it") from self._error
        log.info("live view on %s%s", self.url, " (token required)" if self.token else "")

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the constructor, which raises SinkError
            self._error = exc
            self._ready.set()
            self._loop.run_until_complete(self._stop())
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._stop())
            self._loop.close()

    async def _start(self) -> None:
        self.hub.loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self._view.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        # "" and "::" mean every interface, IPv4 too (asyncio binds "::" for IPv6 only)
        site = web.TCPSite(self._runner, None if self.host in ("", "::") else self.host, self.port)
        await site.start()
        if self._runner.addresses:  # the bound port, for port=0
            self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        self.hub.loop = None
        if self._runner is not None:
            await self._runner.cleanup()
        self._view.encoder.shutdown(wait=False, cancel_futures=True)

    def write(self, frame: Frame) -> None:
        if not self._closed:
            self.hub.put(frame)

    def close(self) -> None:
        """Stop serving: open streams end, the port is released; idempotent, any thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:  # loop already closed
                pass
            self._thread.join(_STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("view server did not stop within %.0f s", _STOP_TIMEOUT_S)

    def __enter__(self) -> ViewSink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
