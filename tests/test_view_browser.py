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
