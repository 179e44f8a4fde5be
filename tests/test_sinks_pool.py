"""Sinks that listen on a port, shared by what they listen on: one web view and one RTSP server
per host:port, however the spec is written and however many cameras or paths use it."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import av
import pytest

from streamer.api import run
from streamer.config import RunConfig, load_config
from streamer.sinks.pool import listen_key
from streamer.sinks.rtsp_serve import check_available
from streamer.site import Site

_REASON = check_available()
needs_gst = pytest.mark.skipif(_REASON is not None, reason=f"GStreamer RTSP server unavailable: {_REASON}")


pytestmark = pytest.mark.usefixtures("identity_backend")  # frames pass through unchanged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_frame(url: str, timeout_s: float = 30.0) -> Any:
    """A frame pulled from ``url``, retried while the server or the camera's mount is not up yet."""
    end = time.monotonic() + timeout_s
    while True:
        try:
            with av.open(url, options={"rtsp_transport": "tcp", "timeout": "5000000"}) as c:
                return next(c.decode(video=0))
        except (av.error.HTTPNotFoundError, av.error.ConnectionRefusedError):
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_listen_key_is_what_is_listened_on() -> None:
    assert listen_key("view:8093") == listen_key("view://127.0.0.1:8093") == ("view", "127.0.0.1", 8093)
    assert listen_key("view") == listen_key("view:127.0.0.1:8080")
    assert (listen_key("rtsp-serve://127.0.0.1:8560/a") == listen_key("rtsp-serve://127.0.0.1:8560/b")
            == ("rtsp-serve", "127.0.0.1", 8560))
    assert listen_key("rtsp-serve://127.0.0.1/a") == listen_key("rtsp-serve://127.0.0.1:8554/x")
    assert listen_key("rtsp-serve://localhost:8554/a") == listen_key("rtsp-serve://127.0.0.1/x")  # as the config's check
    assert listen_key("out/a.mp4") == "out/a.mp4"


def test_one_view_port_written_two_ways_is_one_server(clips: dict[str, Path]) -> None:
    """Site-wide `view:PORT` plus a camera's `view://127.0.0.1:PORT` (same port) failed
    "address already in use" for that camera."""
    port = free_port()
    cfg = load_config(RunConfig, None, {
        "cameras": [{"name": "a", "source": str(clips["small"])},
                    {"name": "b", "source": str(clips["small"]), "sinks": [f"view://127.0.0.1:{port}"]}],
        "sinks": [f"view:{port}"], "backend": {"threads": 1}, "stats_every_s": 0})
    site = Site(cfg)
    result = site.run()
    assert not result.errors and result.frames_out == 24
    assert len({id(s) for s in site.pool.shared.values()}) == 1 and len(site.pool.shared) == 2


@needs_gst
def test_cameras_of_a_site_share_one_rtsp_server_a_path_each(clips: dict[str, Path]) -> None:
    """`rtsp-serve://127.0.0.1:PORT/{camera}` in a 2-camera site: camera b failed "cannot listen
    on 127.0.0.1:PORT (in use …)" and rtsp://…/b was 404."""
    port = free_port()
    live = {"url": str(clips["small"]), "loop": True, "realtime": True}
    cfg = load_config(RunConfig, None, {
        "cameras": [{"name": "a", "source": live}, {"name": "b", "source": live}],
        "sinks": [f"rtsp-serve://127.0.0.1:{port}/{{camera}}"], "backend": {"threads": 1}, "stats_every_s": 0})
    stop = threading.Event()
    site = Site(cfg, stop=stop)
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    try:
        for cam in ("a", "b"):
            frame = first_frame(f"rtsp://127.0.0.1:{port}/{cam}")
            assert (frame.width, frame.height) == (96, 64)
        assert all(c.error is None for c in site.cameras)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    with socket.socket() as s:  # the server stopped with its last mount: the port is free again
        s.bind(("127.0.0.1", port))


@needs_gst
def test_one_camera_serves_two_paths_on_one_port(clips: dict[str, Path]) -> None:
    port = free_port()
    stop = threading.Event()
    got: dict[str, Any] = {}

    def pull_both() -> None:
        try:
            for path in ("plain", "both"):
                got[path] = first_frame(f"rtsp://127.0.0.1:{port}/{path}")
        finally:
            stop.set()

    puller = threading.Thread(target=pull_both, daemon=True)
    puller.start()
    result = run({"source": {"url": str(clips["small"]), "loop": True, "realtime": True},
                  "sinks": [f"rtsp-serve://127.0.0.1:{port}/plain",
                            {"url": f"rtsp-serve://127.0.0.1:{port}/both", "side_by_side": True}],
                  "backend": {"threads": 1}, "stats_every_s": 0}, stop=stop)
    puller.join(30)
    assert result.frames_out > 0
    assert (got["plain"].width, got["both"].width) == (96, 192)  # each path its own stream


def test_a_site_s_view_is_reached_on_the_port_it_names(clips: dict[str, Path]) -> None:
    port = free_port()
    live = {"url": str(clips["small"]), "loop": True, "realtime": True}
    cfg = load_config(RunConfig, None, {
        "cameras": [{"name": "a", "source": live, "sinks": [f"view:{port}"]},
                    {"name": "b", "source": live, "sinks": [f"view://127.0.0.1:{port}"]}],
        "backend": {"threads": 1}, "stats_every_s": 0})
    stop = threading.Event()
    site = Site(cfg, stop=stop)
    runner = threading.Thread(target=site.run, daemon=True)
    runner.start()
    try:
        end = time.monotonic() + 30
        while not all(site.stats.camera(c).frames_out > 2 for c in ("a", "b")):
            assert time.monotonic() < end and runner.is_alive()
            time.sleep(0.05)
        for cam in ("a", "b"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot?camera={cam}", timeout=10) as resp:
                assert resp.status == 200 and resp.read(2) == b"\xff\xd8"
    finally:
        stop.set()
        runner.join(30)
    assert not any(c.error for c in site.cameras)
