"""A real browser (headless Chromium, Debian package) loads the live view and sees moving video.

Chromium is driven over the DevTools protocol (``streamer.testing.browser``), so no
browser-automation package and no browser download is needed.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

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
    # page's WebSocket does not put it in its URL, so the video moving proves it
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


def test_page_notices_a_silent_server_and_resumes(browser: Browser) -> None:
    """The server stops answering without closing anything (hung, a network path gone quiet):
    after 5 s of nothing the page says so, then reconnects by itself once it answers again."""
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    with ViewSink(stats=stats, port=0) as sink, Feeder(sink):
        freeze = lambda: sink._loop.call_soon_threadsafe(time.sleep, 8.0)  # noqa: E731
        live, silent, back = browser.evaluate(sink.url, [(3.0, _PAGE_STATE), (0.0, freeze), (6.5, _PAGE_STATE),
                                                         (6.0, _PAGE_STATE)])
    assert live["banner"] is None and live["tiles"][0]["live"], live
    assert silent["banner"] and "nothing within 5 s" in silent["banner"], silent
    assert not silent["tiles"][0]["live"], silent
    assert back["banner"] is None and back["tiles"][0]["live"], back


def test_page_says_when_its_token_is_no_longer_accepted(browser: Browser) -> None:
    """The run comes back on the same port with another token: the page's WebSocket is refused
    (a browser is not told why); the page finds out and says to reopen it with ?token=."""
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    first = ViewSink(stats=stats, port=0, token="first-token-1234")
    port, second = first.port, []

    def restart() -> None:
        first.close()
        second.append(ViewSink(stats=stats, port=port, token="second-token-5678"))

    try:
        with Feeder(first):
            live, refused = browser.evaluate(first.url + "?token=first-token-1234",
                                             [(3.0, _PAGE_STATE), (0.0, restart), (5.0, _PAGE_STATE)])
        assert live["banner"] is None and live["tiles"][0]["live"], live
        assert refused["banner"] and "access token is not accepted" in refused["banner"], refused
        assert not refused["tiles"][0]["live"], refused
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
    ws_url = "ws" + sink.url.removeprefix("http")
    # blob: URLs would be made in the page (it draws each frame's Blob on a canvas and makes none now)
    urls = [r["url"] for r in browser.requests if not r["url"].startswith(f"blob:{sink.url}")]
    assert urls and all(u.startswith((sink.url, ws_url)) for u in urls), urls
    # after the page and its two files, everything comes over one WebSocket: no MJPEG stream, no polling
    assert sorted(u.split("/", 3)[3] for u in urls[1:]) == ["static/app.js", "static/style.css", "ws"], urls
    later = browser.requests[1:]
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


# --- the shipped site: three cameras in split view ----------------------------------------------
SITE = Path(__file__).resolve().parents[1] / "configs" / "site.yaml"


def _site_cameras() -> tuple[str, ...]:
    return tuple(cam["name"] for cam in yaml.safe_load(SITE.read_text())["cameras"])


class SiteFeeder:
    """Every camera of a site delivers its own moving picture (and its original) at ~12 fps, and
    the run's stats count each frame in and out, as the pipeline does."""

    def __init__(self, sink: ViewSink, stats: RunStats, cams: tuple[str, ...]) -> None:
        self._sink, self._stats, self._cams, self._stop = sink, stats, cams, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        for cam in cams:
            stats.on_up(cam, True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            for k, cam in enumerate(self._cams):
                x = (np.arange(320)[None, :] + 12 * i + 80 * k) % 256
                y = np.arange(180)[:, None]
                image = np.stack(np.broadcast_arrays(x, y, 255 - x), axis=-1).astype(np.uint8)
                self._stats.on_frame_in(cam)
                self._sink.write(Frame(image, i / 12, i, cam, captured_s=time.monotonic(), original=255 - image))
                self._stats.on_frame_out(cam, time.monotonic())
            i += 1
            time.sleep(0.08)

    def __enter__(self) -> SiteFeeder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# per tile: its in/out numbers, and a fingerprint of each picture it shows (null: none yet), read
# from the picture itself (an <img>, as MJPEG streams were shown, or a <canvas>), so it says the
# same of any transport
_TILES = """(() => {
  const sig = pic => {
    if (!(pic.tagName === "IMG" ? pic.naturalWidth : pic.width)) return null;
    const c = document.createElement("canvas"); c.width = 16; c.height = 9;
    const g = c.getContext("2d"); g.drawImage(pic, 0, 0, 16, 9);
    return Array.from(g.getImageData(0, 0, 16, 9).data).join(",");
  };
  const b = document.getElementById("offline");
  return {
    visible: document.visibilityState, split: document.getElementById("all-split").checked,
    banner: b && !b.hidden ? b.innerText : null,
    tiles: [...document.querySelectorAll(".tile")].map(t => ({
      name: t.querySelector(".name").textContent, live: !t.matches(".down, .stale"),
      frames: t.querySelector(".frames").textContent, mode: t.querySelector(".video").dataset.mode,
      pics: [...t.querySelectorAll(".video img, .video canvas")].filter(i => getComputedStyle(i).display !== "none").map(sig),
    })),
  };
})()"""


# from now on, count the decoded frames (ImageBitmaps) the page makes and frees, and the blob URLs
_COUNT_FRAMES = """(() => {
  const n = window.__frames = { bitmaps: 0, closed: 0, urls: 0, revoked: 0 };
  const decode = window.createImageBitmap.bind(window), close = ImageBitmap.prototype.close;
  window.createImageBitmap = (...a) => decode(...a).then(b => { n.bitmaps += 1; return b; });
  ImageBitmap.prototype.close = function () { n.closed += 1; return close.call(this); };
  const make = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
  URL.createObjectURL = o => { n.urls += 1; return make(o); };
  URL.revokeObjectURL = u => { n.revoked += 1; return revoke(u); };
  return true;
})()"""


def _assert_all_tiles_update(before: dict, after: dict, cams: tuple[str, ...], what: str) -> None:
    """Every camera has a live tile in split view whose both pictures and numbers moved on."""
    assert before["visible"] == after["visible"] == "visible", f"{what}: a hidden tab is not this test"
    for state in (before, after):
        assert state["banner"] is None, f"{what}: {state['banner']}"
        assert sorted(t["name"] for t in state["tiles"]) == sorted(cams), f"{what}: {state['tiles']}"
    for a, b in zip(sorted(before["tiles"], key=lambda t: t["name"]), sorted(after["tiles"], key=lambda t: t["name"])):
        name = a["name"]
        assert a["live"] and b["live"], f"{what}: {name} is marked down or out of contact"
        assert a["mode"] == b["mode"] == "split" and len(b["pics"]) == 2, f"{what}: {name} not in split view"
        assert None not in a["pics"] + b["pics"], f"{what}: {name} shows no picture"
        assert all(x != y for x, y in zip(a["pics"], b["pics"])), f"{what}: {name}'s video stands still"
        assert a["frames"] != b["frames"], f"{what}: {name}'s numbers stand still ({a['frames']})"


def test_shipped_three_camera_site_updates_every_tile_and_the_stats(browser: Browser) -> None:
    """configs/site.yaml: three cameras, split by default, i.e. six pictures. One MJPEG stream per
    picture took the browser's six connections to the server: the pictures moved, but the stats
    requests never ran (frozen numbers, "no contact")."""
    cams = _site_cameras()
    assert len(cams) == 3
    stats = RunStats(model="fast", backend="torch")
    with ViewSink(stats=stats, port=0) as sink, SiteFeeder(sink, stats, cams):
        first, _, second, frames = browser.evaluate(
            sink.url, [(7.0, _TILES), (0.0, _COUNT_FRAMES), (4.0, _TILES), (0.0, "window.__frames")], network=False)
    assert first["split"], "the page no longer opens in split view: this test would prove nothing"
    _assert_all_tiles_update(first, second, cams, "the page")
    # hours of video leak nothing: every frame's bitmap is freed once drawn (six, one per picture,
    # may be in flight), and no blob URL is left behind
    assert frames["bitmaps"] > 30 and frames["bitmaps"] - frames["closed"] <= 6, frames
    assert frames["urls"] - frames["revoked"] <= 6, frames


def test_two_tabs_of_the_site_both_update(browser: Browser) -> None:
    """An operator opens the page twice (two monitors): each tab shows every camera, moving."""
    cams = _site_cameras()
    stats = RunStats(model="fast", backend="torch")
    with ViewSink(stats=stats, port=0) as sink, SiteFeeder(sink, stats, cams):
        viewers: dict[str, int] = {}
        first, second = browser.evaluate_tabs(sink.url, 2, [(8.0, _TILES), (3.0, _TILES), (0.0, lambda: viewers.update(
            {cam: sink.hub.get(cam).viewers for cam in cams}))])
    for tab in range(2):
        _assert_all_tiles_update(first[tab], second[tab], cams, f"tab {tab + 1}")
    assert viewers == {cam: 2 for cam in cams}, viewers  # two pages watch each camera


def test_a_second_page_in_the_same_browser_loads(browser: Browser) -> None:
    """The site's page is open; a second one opened later in the same browser (a new tab, or a
    phone's browser with the page already open) loads, with its tiles, pictures and numbers."""
    cams = _site_cameras()
    stats = RunStats(model="fast", backend="torch")
    with ViewSink(stats=stats, port=0) as sink, SiteFeeder(sink, stats, cams):
        (state,) = browser.evaluate_tabs(sink.url, 2, [(5.0, _TILES)], open_every_s=4.0)
    later = state[1]
    assert later is not None, "the second page never loaded (its request got no connection)"
    assert sorted(t["name"] for t in later["tiles"]) == sorted(cams), later
    assert later["banner"] is None and all(t["live"] and None not in t["pics"] for t in later["tiles"]), later


class OtherSite:
    """A page of another origin (another port of this host: the same *site*, so the browser sends
    the view's cookie along) that tries to open the view's WebSocket and ask for a camera."""

    def __init__(self, view_port: int) -> None:
        page = f"""<!doctype html><title>not the view</title><script>
          window.result = "pending";
          const ws = new WebSocket("ws://127.0.0.1:{view_port}/ws");
          ws.onopen = () => {{ window.result = "open";
                               ws.send(JSON.stringify({{want: [{{camera: "front", v: "clean"}}]}})); }};
          ws.onmessage = ev => {{ window.result = typeof ev.data === "string" ? "stats" : "frame"; }};
          ws.onclose = () => {{ if (window.result === "pending") window.result = "refused"; }};
        </script>""".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtherSite:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("token", [None, "browser-token-1234"])
def test_a_page_of_another_site_cannot_open_the_websocket(browser: Browser, token: str | None) -> None:
    """Cross-site WebSocket hijacking: the operator has the view open (its cookie in the browser,
    or no token at all on loopback) and visits another page, which opens ws://view/ws. The
    browser sends the cookie; the server must refuse the upgrade by its Origin."""
    stats = RunStats(model="fast", backend="torch")
    _wait_for_stats(stats, ("front",))
    with ViewSink(stats=stats, port=0, token=token) as sink, Feeder(sink), OtherSite(sink.port) as other:
        (own,) = browser.evaluate(sink.url + (f"?token={token}" if token else ""), [(3.0, _PAGE_STATE)])
        (theirs,) = browser.evaluate(other.url, [(3.0, "window.result")], network=False)
        watching = sink.hub.get("front").viewers
    assert own["banner"] is None and own["tiles"][0]["live"], own  # the view's own page connects
    assert theirs == "refused", theirs
    assert watching == 0
