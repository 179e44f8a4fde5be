"""Push to a real RTSP server (gst-rtsp-server in RECORD mode) that writes what it receives."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest

from streamer.errors import SinkError
from streamer.sinks import open_sink
from streamer.sinks.rtsp import RtspSink
from streamer.sources import open_source


def test_push_reaches_the_server(gst_rtsp_available: None, clips: dict[str, Path], tmp_path: Path) -> None:
    from streamer.testing.rtsp_server import RtspTestServer

    received = tmp_path / "received.h264"
    with RtspTestServer(path="/in", record=received) as server:
        sink = open_sink(server.url, fps=10)
        assert isinstance(sink, RtspSink)
        src = open_source(str(clips["small"]), loop=True, realtime=True)  # paced like a camera
        for i, frame in enumerate(src):
            sink.write(frame)
            if i == 40:
                break
        src.close()
        sink.close()
        last, end = -1, time.monotonic() + 10
        while time.monotonic() < end:  # until the server has written everything it got
            time.sleep(0.5)
            size = received.stat().st_size if received.exists() else 0
            if size and size == last:
                break
            last = size
    with av.open(str(received), format="h264") as c:
        frames = list(c.decode(video=0))
    assert len(frames) >= 30 and (frames[0].width, frames[0].height) == (96, 64)
    assert sink.frames == 41 and sink.dropped == 0


def test_push_to_nothing_is_a_one_line_error(clips: dict[str, Path]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = open_sink(f"rtsp://127.0.0.1:{port}/in", fps=10)
    frame = next(iter(open_source(str(clips["small"]))))
    with pytest.raises(SinkError, match="cannot push RTSP"):
        sink.write(frame)
    sink.close()


def test_frames_dropped_while_the_server_is_gone_show_in_the_run_stats(
        gst_rtsp_available: None, clips: dict[str, Path], tmp_path: Path) -> None:
    from streamer.stats import RunStats
    from streamer.testing.rtsp_server import RtspTestServer

    stats = RunStats()
    server = RtspTestServer(path="/in", record=tmp_path / "received.h264")
    server.start()
    try:
        sink = open_sink(server.url, fps=10, stats=stats)
        src = open_source(str(clips["small"]), name="door", loop=True, realtime=True)
        frames = iter(src)
        for _ in range(5):
            sink.write(next(frames))
        server.stop()
        end = time.monotonic() + 20
        while sink.dropped < 3 and time.monotonic() < end:  # a few frames until TCP notices
            sink.write(next(frames))
        src.close()
        sink.close()
    finally:
        server.stop()
    assert sink.dropped >= 3 and stats.camera("door").dropped == sink.dropped  # the run summary's
    assert stats.registry.get_sample_value("streamer_frames_dropped_total", {"camera": "door"}) == sink.dropped
