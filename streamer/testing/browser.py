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
from pathlib import Path

import aiohttp
import cv2
import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    """Headless Chromium with a DevTools endpoint on a free loopback port."""

    def __init__(self, width: int = 1280, height: int = 760) -> None:
        if CHROMIUM is None:
            raise RuntimeError("headless Chromium not installed (Debian: apt install chromium)")
        self.last_href = ""
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
        return asyncio.run(self._screenshots(url, count, settle_s, every_s))

    async def _screenshots(self, url: str, count: int, settle_s: float, every_s: float) -> list[np.ndarray]:
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

                await call("Page.enable")
                await call("Page.navigate", url=url)
                await asyncio.sleep(settle_s)
                shots = []
                for i in range(count):
                    if i:
                        await asyncio.sleep(every_s)
                    png = base64.b64decode((await call("Page.captureScreenshot", format="png"))["data"])
                    shots.append(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
                self.last_href = (await call("Runtime.evaluate", expression="location.href"))["result"]["value"]
                return shots
