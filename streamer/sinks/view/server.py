"""The web view's HTTP routes (aiohttp): page, MJPEG streams, stats JSON, metrics, health.

Routes (all behind the token when one is set):
    GET /                          the operator page (static/index.html)
    GET /static/{name}             only files listed in static/ at start-up; nothing else, ever
    GET /stream?camera=C&v=clean   MJPEG (multipart/x-mixed-replace); v=original for "before"
    GET /snapshot?camera=C&v=clean one JPEG (camera= may be left out when there is only one)
    GET /api/stats                 JSON for the stats panel
    GET /metrics                   Prometheus text format from the run's registry
    GET /healthz                   200 while every camera delivers, 503 naming those that do not
                                   (the run lists its cameras at start: not up yet counts)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.sinks.view.access import token_middleware
from streamer.sinks.view.feeds import VARIANTS, CameraFeed, FeedHub, Jpeg
from streamer.stats import RunStats

STATIC_DIR = Path(__file__).parent / "static"
BOUNDARY = "frame"
_WAKE_S = 1.0  # a waiting stream re-checks this often whether the server is closing
_NO_STORE = {"Cache-Control": "no-store"}


class ViewApp:
    """Holds what the handlers share; ``app`` is the aiohttp application to serve."""

    def __init__(self, hub: FeedHub, stats: RunStats, token: str | None, title: str) -> None:
        self.hub, self.stats, self.title = hub, stats, title
        self.closing = False
        self.encoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="view-jpeg")
        # the whitelist: a name -> file lookup, so no request path is ever joined to a directory
        self.static = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.name != "index.html"}
        self.index = STATIC_DIR / "index.html"
        self.app = web.Application(middlewares=[token_middleware(token)])
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/static/{name}", self.static_file)
        self.app.router.add_get("/stream", self.stream)
        self.app.router.add_get("/snapshot", self.snapshot)
        self.app.router.add_get("/api/stats", self.api_stats)
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.closing = True
        for feed in self.hub.feeds():
            feed.notify()

    # --- files --------------------------------------------------------------------------------
    async def page(self, _request: web.Request) -> web.StreamResponse:
        # opened as /?token=…: without this the page's first requests (its CSS and script) carry
        # that URL, token included, as their Referer, which a reverse proxy's access log keeps
        return web.FileResponse(self.index, headers={**_NO_STORE, "Referrer-Policy": "no-referrer"})

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        path = self.static.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_NO_STORE)

    # --- video --------------------------------------------------------------------------------
    def _feed_and_variant(self, request: web.Request) -> tuple[CameraFeed, str]:
        name = request.query.get("camera")
        if name is None:  # the only camera (a script's `curl /snapshot` on a one-camera run)
            feeds = self.hub.feeds()
            if len(feeds) > 1:
                raise web.HTTPNotFound(text=f"several cameras: add camera=NAME "
                                            f"({', '.join(f.name for f in feeds)})\n")
            feed = feeds[0] if feeds else None
        else:
            feed = self.hub.get(name)
        variant = request.query.get("v", "clean")
        if feed is None:
            raise web.HTTPNotFound(text="no such camera (yet)\n")
        if variant not in VARIANTS:
            raise web.HTTPBadRequest(text=f"v must be one of {', '.join(VARIANTS)}\n")
        return feed, variant

    async def _encode(self, feed: CameraFeed, variant: str) -> Jpeg | None:
        return await asyncio.get_running_loop().run_in_executor(self.encoder, feed.jpeg, variant)

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        feed, variant = self._feed_and_variant(request)
        jpeg = await self._encode(feed, variant)
        if jpeg is None:
            raise web.HTTPServiceUnavailable(text="no frame yet\n")
        return web.Response(body=jpeg.data, content_type="image/jpeg", headers=_NO_STORE)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """MJPEG: newest frame per part; the boundary follows each JPEG so browsers show it now."""
        feed, variant = self._feed_and_variant(request)
        response = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        feed.viewers += 1
        seen = -1
        try:
            await response.write(f"--{BOUNDARY}\r\n".encode())
            while not self.closing:
                await feed.wait_newer(seen, _WAKE_S)
                if feed.seq == seen or self.closing:
                    continue
                jpeg = await self._encode(feed, variant)
                if jpeg is None:
                    continue
                seen = jpeg.seq
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg.data)}\r\n\r\n".encode()
                await response.write(head + jpeg.data + f"\r\n--{BOUNDARY}\r\n".encode())
                feed.on_sent(jpeg)
        except (ConnectionError, RuntimeError):
            pass  # the viewer went away (closed tab); nothing to clean up but the count
        finally:
            feed.viewers -= 1
        return response

    # --- numbers ------------------------------------------------------------------------------
    async def api_stats(self, _request: web.Request) -> web.Response:
        snap = self.stats.snapshot()
        cams = snap["cameras"]
        names = sorted(set(cams) | {f.name for f in self.hub.feeds()})
        rows = []
        for name in names:
            row = {"name": name, "up": False, "ended": False, "frames_in": 0, "frames_out": 0, "dropped": 0,
                   "reconnects": 0, "last_error": "", "fps": 0.0, "latency_ms": 0.0}
            row.update(cams.get(name, {}))
            feed = self.hub.get(name)
            width, height = feed.size if feed else (0, 0)
            row.update(streaming=feed is not None and feed.seq > 0, width=width, height=height,
                       has_original=bool(feed and feed.has_original), viewers=feed.viewers if feed else 0,
                       display_latency_ms=feed.display_latency_ms if feed else 0.0,
                       sink_fps=feed.fps if feed else 0.0,
                       age_s=round(min(feed.age_s, 1e6), 3) if feed else None)
            rows.append(row)
        return web.json_response({"title": self.title, "model": snap["model"], "backend": snap["backend"],
                                  "cameras": rows}, headers=_NO_STORE)

    async def metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.stats.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _request: web.Request) -> web.Response:
        down = self.stats.down_cameras()
        if down:  # listed from the start, so a camera that never delivered counts too
            waiting = set(self.stats.waiting_cameras())
            lost = sorted(set(down) - waiting)
            parts = ([f"down: {', '.join(lost)}"] if lost else []) + (
                [f"not up yet: {', '.join(sorted(waiting))}"] if waiting else [])
            return web.Response(status=503, text="; ".join(parts) + "\n")
        if not self.stats.snapshot()["cameras"]:
            return web.Response(status=503, text="starting: no camera has delivered yet\n")
        return web.Response(text="ok\n")
