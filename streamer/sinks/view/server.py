"""The web view's HTTP routes (aiohttp): page, its WebSocket, MJPEG streams, stats JSON, metrics, health.

Routes (all behind the token when one is set):
    GET /                          the operator page (static/index.html)
    GET /static/{name}             only files listed in static/ at start-up; nothing else, ever
    GET /ws                        the page's one WebSocket: the frames of the streams it shows
                                   and the stats, every second (protocol below); same-origin only
    GET /stream?camera=C&v=clean   MJPEG (multipart/x-mixed-replace); v=original for "before";
                                   for other tools and third-party pages (the page uses /ws)
    GET /snapshot?camera=C&v=clean one JPEG (camera= may be left out when there is only one)
    GET /api/stats                 JSON for the stats panel
    GET /metrics                   Prometheus text format from the run's registry
    GET /healthz                   200 while every camera delivers, 503 naming those that do not
                                   (the run lists its cameras at start: not up yet counts)

Why one WebSocket: a browser opens at most six HTTP/1.1 connections to a server, and an MJPEG
stream holds one for as long as it plays. Three cameras in split view (six streams) took them
all: the stats requests never ran, a second tab or a phone got nothing. The page now holds one
connection whatever it shows, and every tab one of its own.

/ws protocol. Page -> server, text: ``{"want": [{"camera": "gate", "v": "clean"}, ...]}``, the
streams it shows now (sent on open and whenever that changes; [] while the tab is hidden).
Server -> page, text: ``{"type": "stats", ...}`` (what /api/stats answers) on open and every
second. Binary: one frame, ``uint16`` (big-endian) header length, that many bytes of JSON
``{"camera", "v", "seq"}``, then the JPEG. Per stream the page gets the newest frame whenever
the socket can take one: nothing is queued for it, a frame that arrives while the previous is
still being sent replaces it, and the send waits while the connection is backed up (a small
kernel buffer and aiohttp's write limit), so a slow or stalled page costs one frame of memory
and never slows the pipeline or other viewers. A page that answers no ping for
``_HEARTBEAT_S * 1.5`` s is dropped (viewer count and all).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.sinks.view.access import same_origin, token_middleware
from streamer.sinks.view.feeds import VARIANTS, CameraFeed, FeedHub, Jpeg
from streamer.stats import RunStats

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
BOUNDARY = "frame"
_WAKE_S = 1.0  # a waiting stream re-checks this often whether the server is closing
_NO_STORE = {"Cache-Control": "no-store"}
STATS_EVERY_S = 1.0  # the page's stats panel refresh over the WebSocket
_HEARTBEAT_S = 20.0  # ping the page this often; no pong within half of it: the page is gone
_SEND_BUFFER = 256 * 1024  # kernel send buffer of a WebSocket (Linux doubles it): what may queue there
_MAX_WANT = 64  # streams one page may ask for (cameras x variants); more is not a page
_FRAME_HEAD = struct.Struct(">H")


class _Page:
    """One open WebSocket: the streams its page shows and the last frame it got of each."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self._transport = ws, request.transport
        self.wake = asyncio.Event()
        self.want: list[tuple[str, str]] = []  # (camera, variant), in the page's order
        self.seen: dict[tuple[str, str], int] = {}  # seq of the last frame sent per stream
        self.watching: dict[str, CameraFeed] = {}  # camera -> its feed, while wanted
        self.sent = 0  # frames sent to this page

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel: what a stalled page costs us."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0


class ViewApp:
    """Holds what the handlers share; ``app`` is the aiohttp application to serve."""

    def __init__(self, hub: FeedHub, stats: RunStats, token: str | None, title: str) -> None:
        self.hub, self.stats, self.title = hub, stats, title
        self.closing = False
        self.pages: set[_Page] = set()  # open WebSockets
        self.encoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="view-jpeg")
        # the whitelist: a name -> file lookup, so no request path is ever joined to a directory
        self.static = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.name != "index.html"}
        self.index = STATIC_DIR / "index.html"
        self.app = web.Application(middlewares=[token_middleware(token)])
        self.app.router.add_get("/", self.page)
        self.app.router.add_get("/static/{name}", self.static_file)
        self.app.router.add_get("/ws", self.websocket)
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
        for page in list(self.pages):
            page.wake.set()
        # 1001 going away: the page says the server is gone and reconnects; a stalled page gets
        # a second, then its connection is cut with the others
        closes = [asyncio.wait_for(page.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping"), 1.0)
                  for page in list(self.pages)]
        await asyncio.gather(*closes, return_exceptions=True)

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

    # --- the page's WebSocket ----------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """One per page: the frames of the streams it shows, and the stats (see the module doc)."""
        if not same_origin(request):  # the token (cookie) was checked; this is whose page asks
            raise web.HTTPForbidden(text="403: WebSocket from a page of another site\n")
        ws = web.WebSocketResponse(compress=False, heartbeat=_HEARTBEAT_S, max_msg_size=64 * 1024,
                                   writer_limit=1)  # wait for the kernel after every frame if it is full
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="/ws is a WebSocket; the page opens it\n")
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if sock is not None:
            try:  # a slow link queues at most this much in the kernel, not megabytes of old frames
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
            except OSError:
                pass
        await ws.prepare(request)
        page = _Page(ws, request)
        self.pages.add(page)
        sender = asyncio.create_task(self._send(page))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_want(page, msg.data)
                if sender.done():
                    break
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            for feed in page.watching.values():
                feed.unwatch(page.wake)
            page.watching.clear()
            self.pages.discard(page)
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 1.0)
                except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                    pass
            if request.transport is not None and request.transport.get_write_buffer_size():
                request.transport.abort()  # a stalled page never takes the rest: do not wait for it
        return ws

    def _on_want(self, page: _Page, text: str) -> None:
        try:
            want = json.loads(text)["want"]
            streams = [(str(w["camera"]), str(w.get("v", "clean"))) for w in want[:_MAX_WANT]]
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not a message of the page's; ignored rather than answered
        page.want = [(cam, v) for cam, v in dict.fromkeys(streams) if v in VARIANTS]
        page.seen = {key: seq for key, seq in page.seen.items() if key in page.want}
        self._attach(page)
        page.wake.set()

    def _attach(self, page: _Page) -> None:
        """Watch the feeds of the wanted cameras (one that has no frame yet: at the next stats)."""
        cams = {cam for cam, _ in page.want}
        for cam in list(page.watching):
            if cam not in cams:
                page.watching.pop(cam).unwatch(page.wake)
        for cam in cams - set(page.watching):
            feed = self.hub.get(cam)
            if feed is not None:
                page.watching[cam] = feed
                feed.watch(page.wake)

    async def _send(self, page: _Page) -> None:
        """Stats every second; per wanted stream, its newest frame once it has a new one."""
        loop = asyncio.get_running_loop()
        ws, next_stats = page.ws, 0.0
        try:
            while not self.closing and not ws.closed:
                if loop.time() >= next_stats:
                    self._attach(page)
                    next_stats = loop.time() + STATS_EVERY_S
                    await ws.send_str(json.dumps({"type": "stats", **self.stats_payload()}))
                ready = [(cam, v, page.watching[cam]) for cam, v in page.want
                         if cam in page.watching and page.watching[cam].seq != page.seen.get((cam, v), -1)]
                if not ready:
                    page.wake.clear()  # no await since the check: a frame put now sets it again
                    try:
                        await asyncio.wait_for(page.wake.wait(), max(0.0, next_stats - loop.time()))
                    except asyncio.TimeoutError:
                        pass
                    continue
                # encoded now, so each is the newest there is (and shared with every other viewer)
                jpegs = await asyncio.gather(*(self._encode(feed, v) for _, v, feed in ready))
                for (cam, v, feed), jpeg in zip(ready, jpegs, strict=True):
                    if (cam, v) not in page.want or self.closing:
                        continue  # the page stopped showing it while this was encoded
                    page.seen[(cam, v)] = jpeg.seq if jpeg is not None else feed.seq
                    if jpeg is None:
                        continue
                    head = json.dumps({"camera": cam, "v": v, "seq": jpeg.seq}).encode()
                    # waits while the connection is backed up; the frames put meanwhile are not
                    # kept for this page: the next round sends whatever is newest then
                    await ws.send_bytes(_FRAME_HEAD.pack(len(head)) + head + jpeg.data)
                    page.sent += 1
                    feed.on_sent(jpeg)
        except (ConnectionError, RuntimeError):
            pass  # the page went away; the handler cleans up
        except Exception:  # noqa: BLE001  a bug here left the socket open on pings alone, silent
            log.exception("live view: the page's WebSocket failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"server error")

    # --- numbers ------------------------------------------------------------------------------
    async def api_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats_payload(), headers=_NO_STORE)

    def stats_payload(self) -> dict:
        """The stats panel's numbers: /api/stats, and every second on each page's WebSocket."""
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
        return {"title": self.title, "model": snap["model"], "backend": snap["backend"], "cameras": rows}

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
