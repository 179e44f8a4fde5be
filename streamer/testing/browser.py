"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client, already a
dependency): no browser-automation package, no browser download. Used by the browser test and by
scripts/live_view_picture.py (the README's screenshot)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import cv2
import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    """Headless Chromium with a DevTools endpoint on a free loopback port."""

    def __init__(self, width: int = 1280, height: int = 760, mobile: bool = False) -> None:
        """``mobile``: the page is laid out as on a phone of ``width`` x ``height`` CSS pixels
        (a headless window is never narrower than 500 px)."""
        if CHROMIUM is None:
            raise RuntimeError("headless Chromium not installed (Debian: apt install chromium)")
        self.last_href = ""
        self._mobile = (width, height) if mobile else None
        self.requests: list[dict] = []  # the last session's: url, headers (WebSockets' too)
        self._sockets: dict[str, dict] = {}
        self.console_errors: list[str] = []  # the last session's console and network errors
        self._profile = tempfile.mkdtemp(prefix="streamer-chromium-")
        args = [CHROMIUM, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
                "--hide-scrollbars", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().count("\n") >= 1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        self.port = int(active.read_text().split("\n")[0])

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def screenshots(self, url: str, count: int, settle_s: float, every_s: float) -> list[np.ndarray]:
        """Open ``url``, wait ``settle_s``, then take ``count`` screenshots ``every_s`` apart;
        ``last_href`` is then the page's address as the address bar shows it."""
        steps: list[tuple[float, str | Callable[[], object]]] = [(settle_s if i == 0 else every_s, SCREENSHOT)
                                                                 for i in range(count)]
        return [shots[0] for shots in asyncio.run(self._session(url, steps, 1, 0.0, True))]

    def evaluate(self, url: str, steps: list[tuple[float, str | Callable[[], object]]],
                 network: bool = True) -> list[object]:
        """Open ``url``; per step wait its seconds, then evaluate its JavaScript expression in the
        page (its value is returned, in order), take a screenshot (``SCREENSHOT``: a BGR array) or
        call it (a Python callable, e.g. stopping the server, run in a thread). ``requests`` and
        ``console_errors`` then tell what the page did (``network=False``: no ``requests``, which
        spares DevTools a copy of every WebSocket frame)."""
        return [v[0] for v, (_, step) in zip(asyncio.run(self._session(url, steps, 1, 0.0, network)), steps,
                                             strict=True) if isinstance(step, str)]

    def evaluate_tabs(self, url: str, tabs: int, steps: list[tuple[float, str | Callable[[], object]]],
                      open_every_s: float = 0.0, network: bool = False) -> list[list[object]]:
        """``evaluate`` in ``tabs`` pages of this one browser (one profile: cookies, connection
        limits per server shared, as an operator's second tab), each its own window so none is a
        hidden background tab. The tabs open ``open_every_s`` apart, each earlier one running on;
        then every step is evaluated in every tab: per expression step, the list of its values, one
        per tab in opening order."""
        return [v for v, (_, step) in zip(asyncio.run(self._session(url, steps, tabs, open_every_s, network)),
                                          steps, strict=True) if isinstance(step, str)]

    async def _session(self, url: str, steps: list[tuple[float, str | Callable[[], object]]], tabs: int,
                       open_every_s: float, network: bool) -> list[list[object]]:
        self.requests, self.console_errors, self._sockets = [], [], {}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            page_urls = [next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")]
            if tabs > 1:
                async with http.get(f"http://127.0.0.1:{self.port}/json/version") as resp:
                    browser_url = (await resp.json(content_type=None))["webSocketDebuggerUrl"]
                async with http.ws_connect(browser_url, max_msg_size=0) as bws:
                    browser = _Tab(bws, self._on_event)
                    for _ in range(tabs - 1):
                        target = await browser.call("Target.createTarget", url="about:blank", newWindow=True)
                        page_urls.append(f"ws://127.0.0.1:{self.port}/devtools/page/{target['targetId']}")
                    await browser.stop()
            pages: list[_Tab] = []
            try:
                for i, ws_url in enumerate(page_urls):
                    page = _Tab(await http.ws_connect(ws_url, max_msg_size=0), self._on_event)
                    pages.append(page)
                    for domain in ("Page", "Runtime", "Log") + (("Network",) if network else ()):
                        await page.call(f"{domain}.enable")
                    if self._mobile:
                        await page.call("Emulation.setDeviceMetricsOverride", width=self._mobile[0],
                                        height=self._mobile[1], deviceScaleFactor=1, mobile=True)
                    if i:
                        await asyncio.sleep(open_every_s)
                    try:  # answered once the page's own request is; one that never is, the steps will see
                        await asyncio.wait_for(page.call("Page.navigate", url=url), 10)
                    except asyncio.TimeoutError:
                        pass
                results: list[list[object]] = []
                for wait_s, step in steps:
                    await asyncio.sleep(wait_s)
                    if step is SCREENSHOT:
                        shots = []
                        for page in pages:
                            png = base64.b64decode((await page.call("Page.captureScreenshot", format="png"))["data"])
                            shots.append(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
                        results.append(shots)
                    elif isinstance(step, str):
                        values = []
                        for page in pages:
                            try:  # a tab whose page never loaded does not answer: None
                                value = await asyncio.wait_for(
                                    page.call("Runtime.evaluate", expression=step, returnByValue=True), 10)
                            except asyncio.TimeoutError:
                                value = {"result": {}}
                            values.append(value["result"].get("value"))
                        results.append(values)
                    else:
                        results.append([await asyncio.to_thread(step)])
                self.last_href = (await pages[0].call("Runtime.evaluate", expression="location.href"))["result"]["value"]
                return results
            finally:
                for i, page in enumerate(pages):
                    if i:  # the tabs this session opened (the first one stays, for the next session)
                        try:
                            await page.call("Page.close")
                        except (RuntimeError, asyncio.TimeoutError, aiohttp.ClientError):
                            pass
                    await page.stop()
                    await page.ws.close()

    def _on_event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append({"url": params["request"]["url"], "headers": params["request"]["headers"]})
        elif method == "Network.webSocketCreated":  # a WebSocket is a request too (its headers follow)
            self._sockets[params["requestId"]] = entry = {"url": params["url"], "headers": {}}
            self.requests.append(entry)
        elif method == "Network.webSocketWillSendHandshakeRequest" and params["requestId"] in self._sockets:
            self._sockets[params["requestId"]]["headers"] = params["request"]["headers"]
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.console_errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(params["exceptionDetails"].get("exception", {}).get("description", "")
                                       or params["exceptionDetails"].get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.console_errors.append(" ".join(str(a.get("value", "")) for a in params["args"]))


class _Tab:
    """One DevTools connection: commands answered by id, events read on continuously (so none
    pile up between steps) and handed to ``on_event``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, on_event: Callable[[dict], None]) -> None:
        self.ws, self._on_event = ws, on_event
        self._ids = iter(range(1, 1_000_000_000))
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None:
                if not future.done():
                    future.set_result(data)
            else:
                self._on_event(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("DevTools connection closed"))

    async def call(self, method: str, **params: object) -> dict:
        msg_id = next(self._ids)
        future = self._waiting[msg_id] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(future, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    async def stop(self) -> None:
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass


SCREENSHOT = "\0screenshot"  # a step of evaluate(): a screenshot, not an expression anyone evaluates
