"""Web view sink against a real server on 127.0.0.1 port 0 and real HTTP clients."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ViewFeeder, view_frame
from streamer.errors import ConfigError, SinkError
from streamer.sinks.base import Sink
from streamer.sinks.view import ViewSink
from streamer.sinks.view.latency import iter_mjpeg, measure_view_latency
from streamer.stats import RunStats

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def stats() -> RunStats:
    stats = RunStats(model="fast", backend="torch")
    stats.on_up("front", True)
    stats.on_frame_in("front")
    return stats


@pytest.fixture
def view(stats: RunStats) -> Iterator[ViewSink]:
    sink = ViewSink(stats=stats, port=0)
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def guarded(stats: RunStats) -> Iterator[ViewSink]:
    sink = ViewSink(stats=stats, port=0, token=TOKEN)
    try:
        yield sink
    finally:
        sink.close()


def get(sink: ViewSink, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One raw request: http.client sends the path byte for byte (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def read_jpegs(sink: ViewSink, n: int, query: str = "camera=front") -> list[np.ndarray]:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    try:
        conn.request("GET", f"/stream?{query}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("multipart/x-mixed-replace")
        images = []
        for data in iter_mjpeg(resp):
            assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"  # SOI ... EOI
            images.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
            if len(images) == n:
                return images
        raise AssertionError(f"stream ended after {len(images)} JPEGs")
    finally:
        conn.close()


def test_is_a_sink(view: ViewSink) -> None:
    assert isinstance(view, Sink)
    assert view.port > 0 and view.url == f"http://127.0.0.1:{view.port}/"


def test_mjpeg_stream_yields_jpegs_that_change(view: ViewSink) -> None:
    with ViewFeeder(view):
        images = read_jpegs(view, 6)
    assert all(img is not None and img.shape == (96, 160, 3) for img in images)
    assert np.abs(images[0].astype(int) - images[-1].astype(int)).mean() > 5


def test_before_stream_is_the_original(view: ViewSink) -> None:
    with ViewFeeder(view):
        after = read_jpegs(view, 1)[0].astype(int)
        before = read_jpegs(view, 1, "camera=front&v=original")[0].astype(int)
    # original = 255 - image: the two streams are near-inverses, not the same picture
    assert np.abs(before + after - 255).mean() < 40
    assert np.abs(before - after).mean() > 40


def test_one_encode_per_frame_shared_by_viewers(view: ViewSink, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = cv2.imencode
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: calls.append(1) or real(*a, **k))
    for i in range(5):
        view.write(view_frame(i))
    assert calls == []  # nobody watching: nothing encoded
    with ViewFeeder(view):
        results: list[list[np.ndarray]] = []
        readers = [threading.Thread(target=lambda: results.append(read_jpegs(view, 8))) for _ in range(3)]
        for r in readers:
            r.start()
        for r in readers:
            r.join(30)
        frames_written = view.hub.get("front").seq
    assert len(results) == 3
    assert len(calls) <= frames_written  # 3 viewers, still at most one encode per frame


def test_unknown_camera_and_variant(view: ViewSink) -> None:
    view.write(view_frame(0))
    assert get(view, "/stream?camera=nope")[0] == 404
    assert get(view, "/stream?camera=front&v=sideways")[0] == 400
    status, headers, body = get(view, "/snapshot?camera=front")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert get(view, "/snapshot")[2] == body  # one camera: camera= may be left out
    view.write(view_frame(0, cam="back"))
    status, _, body = get(view, "/snapshot")
    assert status == 404 and b"add camera=NAME (front, back)" in body


def test_page_and_static_files_served(view: ViewSink) -> None:
    status, headers, body = get(view, "/")
    assert status == 200 and b"static/app.js" in body and "text/html" in headers["Content-Type"]
    for name in ("app.js", "style.css"):
        assert get(view, f"/static/{name}")[0] == 200


@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/static/%252e%252e%252fetc%252fpasswd",
    "/static/..%5c..%5cetc%5cpasswd",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/index.html/../../sink.py",
    "/static/../sink.py",
    "/static/..%2fsink.py",
    "/..%2f..%2fetc%2fpasswd",
    "/etc/passwd",
    "/static/",
])
def test_no_path_outside_static_is_served(view: ViewSink, path: str) -> None:
    status, _, body = get(view, path)
    assert status == 404, path
    assert b"root:" not in body and b"ViewSink" not in body


def test_token_required_everywhere(guarded: ViewSink) -> None:
    guarded.write(view_frame(0))
    for path in ("/", "/static/app.js", "/api/stats", "/metrics", "/healthz", "/stream?camera=front", "/ws",
                 "/static/../../etc/passwd"):
        status, headers, _ = get(guarded, path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert get(guarded, "/api/stats", {"Authorization": "Bearer wrong-token-123"})[0] == 401
    assert get(guarded, "/api/stats?token=wrong-token-123")[0] == 401


def test_without_a_token_only_loopback_names_are_served(view: ViewSink) -> None:
    """DNS rebinding: a page of evil.example, its name made to resolve to 127.0.0.1, reaches a
    loopback view with ``Host: evil.example`` and would read the video; loopback names pass."""
    port = view.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST", f"cam.localhost:{port}"):
        assert get(view, "/api/stats", {"Host": host})[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"192.168.1.5:{port}", f"127.0.0.1.evil.example:{port}"):
        for path in ("/", "/api/stats", "/ws", "/stream?camera=front"):
            status, _, body = get(view, path, {"Host": host})
            assert status == 403, (host, path)
            assert b"STREAMER_TOKEN" in body


def test_token_accepted_by_header_query_and_cookie(guarded: ViewSink) -> None:
    assert get(guarded, "/metrics", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert get(guarded, "/metrics", {"Authorization": f"bearer {TOKEN}"})[0] == 200  # RFC 7235: any case
    assert get(guarded, "/metrics", {"Authorization": f"Basic {TOKEN}"})[0] == 401
    status, headers, _ = get(guarded, f"/?token={TOKEN}")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    name = cookie.split("=")[0]
    assert re.fullmatch(r"streamer_token_[0-9a-f]{8}", name) and cookie == f"{name}={TOKEN}"
    assert "HttpOnly" in headers["Set-Cookie"]
    assert get(guarded, "/api/stats", {"Cookie": cookie})[0] == 200
    assert get(guarded, "/api/stats", {"Cookie": f"{name}=nope-nope-nope"})[0] == 401


def test_two_views_on_one_host_keep_their_own_cookie(guarded: ViewSink, stats: RunStats) -> None:
    """Browsers share a host's cookies across ports: with one cookie name, opening the second
    view (its own token) replaced the first one's cookie and its page went 401."""
    with ViewSink(stats=stats, port=0, token="another-token-5678") as other:
        jar = "; ".join(get(v, f"/?token={t}")[1]["Set-Cookie"].split(";")[0]
                        for v, t in ((guarded, TOKEN), (other, "another-token-5678")))
        assert get(guarded, "/api/stats", {"Cookie": jar})[0] == 200
        assert get(other, "/api/stats", {"Cookie": jar})[0] == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "camera-box.local"])
def test_refuses_wide_bind_without_token(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="without an access token; set STREAMER_TOKEN"):
        ViewSink(host=host, port=0)


def test_wide_bind_with_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_TOKEN", TOKEN)
    with ViewSink(host="0.0.0.0", port=0) as sink:
        assert sink.token == TOKEN
        assert get(sink, "/healthz")[0] == 401


def test_all_interfaces_in_ipv6_notation_serves_ipv4_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """`view://[::]:PORT` means every interface, as users read it (asyncio alone binds IPv6 only)."""
    import socket

    monkeypatch.setenv("STREAMER_TOKEN", TOKEN)
    with socket.socket() as probe:  # a free port (port 0 would give each address family its own)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ViewSink(host="::", port=port) as sink:
        assert get(sink, "/healthz")[0] == 401  # reached over IPv4 loopback; the token is asked


def test_short_token_refused() -> None:
    with pytest.raises(ConfigError, match="at least 8 characters"):
        ViewSink(port=0, token="abc")


def test_port_in_use_is_a_sink_error(view: ViewSink) -> None:
    with pytest.raises(SinkError, match=f"cannot listen on 127.0.0.1:{view.port}"):
        ViewSink(port=view.port)


def test_metrics_parse_as_prometheus_text(view: ViewSink, stats: RunStats) -> None:
    stats.on_stage("front", "network", 0.02)
    stats.on_frame_out("front", time.monotonic() - 0.05)
    status, headers, body = get(view, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {"streamer_frames_in", "streamer_frames_dropped", "streamer_stage_seconds",
            "streamer_latency_seconds", "streamer_reconnects"} <= set(families)
    frames_in = [s for s in families["streamer_frames_in"].samples if s.name == "streamer_frames_in_total"]
    assert frames_in[0].labels == {"camera": "front"} and frames_in[0].value == 1.0


def test_healthz_names_the_camera_that_is_down(view: ViewSink, stats: RunStats) -> None:
    stats.on_up("rear", True)
    assert get(view, "/healthz")[:1] == (200,)
    stats.on_up("rear", False, "connection refused")
    status, _, body = get(view, "/healthz")
    assert status == 503 and b"rear" in body and b"front" not in body
    stats.expect("side", "gone")  # a site's cameras, listed before any delivers
    stats.on_up("gone", False, "cannot open RTSP camera (Connection refused)")  # failed for good
    assert get(view, "/healthz")[2] == b"down: gone, rear; not up yet: side\n"


def test_healthz_before_any_camera() -> None:
    with ViewSink(port=0) as sink:
        status, _, body = get(sink, "/healthz")
    assert status == 503 and b"no camera" in body


def test_stats_json_lists_every_camera(view: ViewSink, stats: RunStats) -> None:
    stats.on_up("rear", False, "connection refused")
    view.write(view_frame(0, "front"))
    status, _, body = get(view, "/api/stats")
    data = json.loads(body)
    assert status == 200 and data["model"] == "fast" and data["backend"] == "torch"
    cams = {c["name"]: c for c in data["cameras"]}
    assert cams["front"]["streaming"] and cams["front"]["has_original"] and cams["front"]["width"] == 160
    assert not cams["rear"]["up"] and cams["rear"]["last_error"] == "connection refused"


def test_close_ends_streams_and_frees_port(stats: RunStats) -> None:
    sink = ViewSink(stats=stats, port=0)
    sink.write(view_frame(0))
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    conn.request("GET", "/stream?camera=front")
    resp = conn.getresponse()
    next(iter_mjpeg(resp))
    sink.close()
    sink.close()  # idempotent
    assert list(iter_mjpeg(resp)) == []  # the open stream ended
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket_conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
        socket_conn.request("GET", "/healthz")


def test_latency_measurement_reads_frames_back() -> None:
    result = measure_view_latency(frames=20, width=320, height=180, fps=30.0)
    assert result["frames_received"] > 0
    assert result["latency_ms_median"] > 0


def test_view_specs() -> None:
    from streamer.sinks.view import parse_view_spec

    assert parse_view_spec("view") == ("127.0.0.1", 8080)
    assert parse_view_spec("view:9000") == ("127.0.0.1", 9000)
    assert parse_view_spec("view:0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_view_spec("view:[::1]:9000") == ("::1", 9000)
    assert parse_view_spec("view://0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_view_spec("view://[::]:9000") == ("::", 9000)
    assert parse_view_spec("view://camera-box") == ("camera-box", 8080)
    for bad in ("viewer", "view:", "view:host:", "view:99999", "view://:x"):
        with pytest.raises(ConfigError, match="expected view"):
            parse_view_spec(bad)


def test_open_sink_builds_a_view(stats: RunStats) -> None:
    from streamer.sinks import open_sink

    sink = open_sink("view:127.0.0.1:0", stats=stats, fps=25.0, side_by_side=True)
    try:
        assert isinstance(sink, ViewSink) and sink.stats is stats and sink.port > 0
        assert get(sink, "/healthz")[0] == 200
    finally:
        sink.close()
