"""A real browser (headless Chromium, Debian package) loads the live view and sees moving video.

Chromium is driven over the DevTools protocol (``streamer.testing.browser``), so no
browser-automation package and no browser download is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from streamer.frame import Frame
from streamer.sinks.view import ViewSink
from streamer.stats import RunStats
from streamer.testing.browser import CHROMIUM, Browser

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                                          "(Debian: apt install chromium; or make system-deps)")


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
    # the cookie carries the token from the first answer on: it leaves the address bar, and the
    # page's requests (stats, streams) no longer put it in their URLs, so the video moving proves it
    assert browser.last_href == sink.url, browser.last_href


# what an operator sees of each tile, and the page's word on the connection (null: none shown)
_PAGE_STATE = """({
  banner: (() => { const b = document.getElementById("offline"); return b && !b.hidden ? b.innerText : null; })(),
  tiles: [...document.querySelectorAll(".tile")].map(t => ({
    name: t.querySelector(".name").textContent, live: !t.matches(".down, .stale"),
    note: [...t.querySelectorAll(".nosignal, .stale-note")].filter(n => n.offsetParent).map(n => n.innerText).join(),
  })),
})"""


def _wait_for_stats(stats: RunStats, cams: tuple[str, ...]) -> None:
    for cam in cams:
        stats.on_up(cam, True)
        stats.on_frame_in(cam)


def test_page_says_when_the_server_is_gone(browser: Browser) -> None:
    """The run stops (Ctrl-C, crash): the pictures freeze on their last frame. The page must say
    so, on every tile, not keep green dots and the last fps under a frozen picture."""
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    with ViewSink(stats=stats, port=0) as sink, Feeder(sink):
        live, gone = browser.evaluate(sink.url, [(3.0, _PAGE_STATE), (0.0, sink.close), (7.0, _PAGE_STATE)])
    assert live["banner"] is None and live["tiles"] == [{"name": "front", "live": True, "note": ""}], live
    assert gone["banner"] and "server" in gone["banner"], gone
    assert [t["live"] for t in gone["tiles"]] == [False] and gone["tiles"][0]["note"], gone


def test_page_comes_back_with_the_server(browser: Browser) -> None:
    """The run is restarted on the same port: the open page picks the video up again, no reload."""
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    first = ViewSink(stats=stats, port=0)
    port, second = first.port, []

    def restart() -> None:
        first.close()
        time.sleep(3.0)
        second.append(ViewSink(stats=stats, port=port))
        Feeder(second[0]).__enter__()

    try:
        with Feeder(first):
            _, back = browser.evaluate(first.url, [(3.0, _PAGE_STATE), (0.0, restart), (8.0, _PAGE_STATE)])
        assert back["banner"] is None and back["tiles"][0]["live"], back
        assert second[0].hub.get("front").viewers >= 1, "the page did not open the stream again"
    finally:
        first.close()
        for sink in second:
            sink.close()


def test_page_loads_clean_offline_and_keeps_the_token_out(browser: Browser) -> None:
    """No console error (favicon included), nothing fetched from another origin, and after the
    first request the token is in no request: neither its URL nor its Referer (which reverse
    proxies' access logs keep)."""
    token = "browser-token-1234"
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    with ViewSink(stats=stats, port=0, token=token) as sink, Feeder(sink):
        browser.evaluate(sink.url + f"?token={token}", [(4.0, "1")])
    assert browser.console_errors == []
    urls = [r["url"] for r in browser.requests]
    assert urls and all(u.startswith(sink.url) for u in urls), urls
    later = browser.requests[1:]
    assert any("stream?" in r["url"] for r in later) and any("api/stats" in r["url"] for r in later)
    leaks = [r for r in later if token in r["url"] or token in r["headers"].get("Referer", "")]
    assert leaks == [], leaks


def test_phone_sized_page_fits_and_its_numbers_are_readable() -> None:
    """A three-camera site on a phone (390 px wide): nothing wider than the screen (no sideways
    scrolling to find a camera), and no number or label of the stats cut off."""
    stats = RunStats(model="fast", backend="torch")
    cams = ("gate", "yard", "dock")
    _wait_for_stats(stats, cams)
    phone = Browser(width=390, height=844, mobile=True)
    try:
        with ViewSink(stats=stats, port=0) as sink:
            for i in range(3):
                for cam in cams:  # one frame each is enough for the layout
                    image = np.full((180, 320, 3), 40 * i, np.uint8)
                    sink.write(Frame(image, 0.0, i, cam, captured_s=time.monotonic(), original=image))
            stats.camera("gate").frames_in = 123456  # a long-running camera's counters
            stats.camera("gate").frames_out = 123450
            page = phone.evaluate(sink.url, [(3.0, """({
              width: screen.width, scroll: document.documentElement.scrollWidth, tiles: document.querySelectorAll(".tile").length,
              cut: [...document.querySelectorAll(".stats dt, .stats dd")].filter(e => e.scrollWidth > e.clientWidth + 1)
                     .map(e => e.textContent)})""")])[0]
    finally:
        phone.close()
    assert page["tiles"] == 3
    assert page["scroll"] <= page["width"], page
    assert page["cut"] == [], page
