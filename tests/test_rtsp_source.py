"""RTSP in against a real gst-rtsp-server on 127.0.0.1 that the test kills and restarts."""

from __future__ import annotations

import threading

import pytest

from streamer.config import ReconnectConfig
from streamer.errors import SourceError
from streamer.pipeline import Pipeline
from streamer.preprocess.frames import FrameRestorer
from streamer.sinks.null import NullSink
from streamer.sources import open_source
from streamer.sources.live import Backoff, redact
from streamer.stats import RunStats
from streamer.testing.wait import wait_until

FAST_RETRY = ReconnectConfig(initial_s=0.2, factor=2.0, max_s=1.0)


def test_run_survives_camera_restart(rtsp_server) -> None:
    stats = RunStats()
    src = open_source(rtsp_server.url, "cam", timeout_s=2.0, reconnect=FAST_RETRY, stats=stats)
    sink = NullSink()
    stop = threading.Event()
    pipe = Pipeline(src, FrameRestorer(None), [sink], stats=stats, stop=stop)
    results = []
    runner = threading.Thread(target=lambda: results.append(pipe.run()))
    runner.start()
    try:
        cam = stats.camera("cam")
        assert wait_until(lambda: sink.frames >= 10), "no frames from the RTSP server"
        assert cam.up
        rtsp_server.stop()  # the camera loses power
        assert wait_until(lambda: not cam.up), "loss not noticed"
        assert cam.last_error
        before = sink.frames
        rtsp_server.start()  # same port
        assert wait_until(lambda: sink.frames >= before + 10), "run did not resume"
        assert cam.up and cam.reconnects == 1
    finally:
        stop.set()
        runner.join(20)
    assert not runner.is_alive() and results[0].reconnects == 1
    assert results[0].frames_out == sink.frames


def test_pts_keep_increasing_over_a_reconnect(rtsp_server) -> None:
    src = open_source(rtsp_server.url, timeout_s=2.0, reconnect=FAST_RETRY)
    pts: list[float] = []
    for frame in src:
        pts.append(frame.pts_s)
        if len(pts) == 5:
            rtsp_server.restart()
        if len(pts) == 12:
            src.close()
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert src.live


def test_closed_port_is_a_one_line_error(gst_rtsp_available: None) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = open_source(f"rtsp://user:secret@127.0.0.1:{port}/cam", timeout_s=2.0)
    with pytest.raises(SourceError, match="cannot open RTSP camera") as err:
        next(iter(src))
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


def test_a_server_that_never_answers_is_reported_as_such() -> None:
    """It takes the TCP connection and says nothing (a hung camera): the message says so, not
    FFmpeg's "Invalid data found when processing input"."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        src = open_source(f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam", timeout_s=1.0)
        with pytest.raises(SourceError, match=r"cannot open RTSP camera \(no answer within 1 s"):
            next(iter(src))


def test_gives_up_after_max_attempts() -> None:
    src = open_source("rtsp://127.0.0.1:9/none", timeout_s=1.0,
                      reconnect=ReconnectConfig(initial_s=0.05, max_attempts=2, retry_first_connect=True))
    with pytest.raises(SourceError, match="RTSP camera not reached yet .*gave up after 2 attempts"):  # never up: not "lost"
        next(iter(src))


def test_backoff_is_exponential_and_capped() -> None:
    b = Backoff(ReconnectConfig(initial_s=0.5, factor=2.0, max_s=3.0, max_attempts=6))
    assert [b.next_delay_s() for _ in range(7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, None]
    b.reset()
    assert b.next_delay_s() == 0.5
    assert redact("rtsp://admin:pw@10.0.0.2/s") == "rtsp://admin:***@10.0.0.2/s"


def test_decode_stage_leaves_out_the_wait_on_the_camera(rtsp_server) -> None:
    """The `decode` stage counted waiting on the RTSP socket (~67 ms a frame at 15 fps, and one
    huge sample per outage). Not a speed check: decoding 160x120 is a small part of that."""
    stats = RunStats()
    src = open_source(rtsp_server.url, "cam", timeout_s=5.0, stats=stats)
    sink = NullSink()
    pipe = Pipeline(src, FrameRestorer(None), [sink], stats=stats, max_frames=30)
    pipe.run()
    labels = {"camera": "cam", "stage": "decode"}
    total = stats.registry.get_sample_value("streamer_stage_seconds_sum", labels)
    count = stats.registry.get_sample_value("streamer_stage_seconds_count", labels)
    assert count >= 30 and 0 < total / count < 0.25 / 15
