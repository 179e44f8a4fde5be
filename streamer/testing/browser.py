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
        self.requests: list[dict] = []  # the last session's: url, headers
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
        steps: list[tuple[float, str | Callable[[], object]]] = [(settle_s if i == 0 else every_s, _SHOT)
                                                                 for i in range(count)]
        return [shot for shot in asyncio.run(self._session(url, steps)) if isinstance(shot, np.ndarray)]

    def evaluate(self, url: str, steps: list[tuple[float, str | Callable[[], object]]]) -> list[object]:
        """Open ``url``; per step wait its seconds, then evaluate its JavaScript expression in the
        page (its value is returned, in order) or call it (a Python callable, e.g. stopping the
        server, run in a thread). ``requests`` and ``console_errors`` then tell what the page did."""
        return [v for v, (_, step) in zip(asyncio.run(self._session(url, steps)), steps, strict=True)
                if isinstance(step, str)]

    async def _session(self, url: str, steps: list[tuple[float, str | Callable[[], object]]]) -> list[object]:
        self.requests, self.console_errors = [], []
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(ws_url, max_msg_size=0) as ws:
                ids = iter(range(1, 1_000_000))

                async def call(method: str, **params: object) -> dict:
                    msg_id = next(ids)
                    await ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
                    while True:
                        msg = json.loads((await ws.receive(timeout=30)).data)
                        if msg.get("id") == msg_id:
                            if "error" in msg:
                                raise RuntimeError(f"{method}: {msg['error']}")
                            return msg["result"]
                        self._on_event(msg)

                for domain in ("Page", "Runtime", "Log", "Network"):
                    await call(f"{domain}.enable")
                if self._mobile:
                    await call("Emulation.setDeviceMetricsOverride", width=self._mobile[0], height=self._mobile[1],
                               deviceScaleFactor=1, mobile=True)
                await call("Page.navigate", url=url)
                results: list[object] = []
                for wait_s, step in steps:
                    await asyncio.sleep(wait_s)
                    if step is _SHOT:
                        png = base64.b64decode((await call("Page.captureScreenshot", format="png"))["data"])
                        results.append(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
                    elif isinstance(step, str):
                        value = await call("Runtime.evaluate", expression=step, returnByValue=True)
                        results.append(value["result"].get("value"))
                    else:
                        results.append(await asyncio.to_thread(step))
                self.last_href = (await call("Runtime.evaluate", expression="location.href"))["result"]["value"]
                return results

    def _on_event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append({"url": params["request"]["url"], "headers": params["request"]["headers"]})
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.console_errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(params["exceptionDetails"].get("exception", {}).get("description", "")
                                       or params["exceptionDetails"].get("text", ""))
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.console_errors.append(" ".join(str(a.get("value", "")) for a in params["args"]))


_SHOT = "\0screenshot"  # a step of screenshots(): not an expression anyone evaluates
