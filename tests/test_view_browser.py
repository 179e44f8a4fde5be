"""A real browser (headless Chromium, Debian package) loads the live view and sees moving video.

Chromium is driven over the DevTools protocol with aiohttp's websocket client (already a
dependency), so no browser-automation package and no browser download is needed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from streamer.frame import Frame
from streamer.sinks.view import ViewSink
from streamer.stats import RunStats

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                                          "(Debian: apt install chromium; or make system-deps)")


class Browser:
    """Headless Chromium with a DevTools endpoint on a free loopback port."""

    def __init__(self, width: int = 1280, height: int = 760) -> None:
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
        """Open ``url``, wait ``settle_s``, then take ``count`` screenshots ``every_s`` apart."""
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
                return shots


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


class Feeder:
    """Moving gradient frames at ~25 fps from a thread, as the pipeline would write them."""

    def __init__(self, sink: ViewSink) -> None:
        self._sink, self._stop = sink, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            x = (np.arange(320)[None, :] + 12 * i) % 256
            y = np.arange(180)[:, None]
            image = np.stack(np.broadcast_arrays(x, y, 255 - x), axis=-1).astype(np.uint8)
            self._sink.write(Frame(image, i / 25, i, "front", captured_s=time.monotonic(), original=255 - image))
            i += 1
            time.sleep(0.04)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _video_box(shot: np.ndarray) -> tuple[slice, slice]:
    """Where the first camera tile's picture is: the bright block under the header bar."""
    mask = shot.max(axis=2) > 60
    rows, cols = np.nonzero(mask[80:])  # skip the header bar
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return slice(80 + rows.min(), 80 + rows.max() + 1), slice(cols.min(), cols.max() + 1)


@pytest.mark.parametrize("token", [None, "browser-token-1234"])
def test_browser_shows_moving_video(browser: Browser, token: str | None) -> None:
    stats = RunStats(model="fast", backend="torch")
    stats.on_up("front", True)
    with ViewSink(stats=stats, port=0, token=token) as sink, Feeder(sink):
        url = sink.url + (f"?token={token}" if token else "")
        first, second = browser.screenshots(url, count=2, settle_s=3.0, every_s=1.2)
    assert first.shape == second.shape and first.shape[0] > 300
    box = _video_box(first)
    video_a, video_b = first[box].astype(int), second[box].astype(int)
    assert video_a.shape[0] > 100 and video_a.shape[1] > 200, "no video picture on the page"
    assert video_a.std() > 20, "video area is blank"
    # only the picture is compared: the stats numbers change too, but that is not video
    assert np.abs(video_a - video_b).mean() > 5.0, "video did not change over time"
