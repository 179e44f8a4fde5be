"""Push to a real RTSP server (gst-rtsp-server in RECORD mode) that writes what it receives."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import av
import pytest

from conftest import read_video
from streamer.errors import ConfigError
from streamer.pipeline import Pipeline
from streamer.preprocess.frames import FrameRestorer
from streamer.sinks import open_sink
from streamer.sinks.rtsp import RtspSink
from streamer.sources import open_source
from streamer.stats import RunStats


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_push_to_nothing_drops_and_retries_without_failing(clips: dict[str, Path],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A live output that is not there is not a failed job: frames are dropped and counted, the
    connection retried with backoff; it was "cannot push RTSP (…)" and the run (recording too) ended.
    Nor is it "back" on each retry (FFmpeg connects on the first packet, not at open)."""
    sink = open_sink(f"rtsp://127.0.0.1:{free_port()}/in", fps=10)
    frames = iter(open_source(str(clips["small"]), "door"))
    with caplog.at_level(logging.INFO, logger="streamer.sinks.rtsp"):
        for _ in range(3):
            sink.write(next(frames))
        sink._retry_at = 0.0  # the next attempt now rather than after the backoff
        sink.write(next(frames))
    sink.close()
    assert sink.dropped == 4 and sink.frames == 0 and not sink.ever_up
    assert [r.getMessage().split(" (")[0].split(": ", 1)[1] for r in caplog.records] == [
        "RTSP output not reached yet"] * 2
    assert "retry in 0.5 s, attempt 1" in caplog.records[0].getMessage()


@pytest.mark.parametrize("url", ["rtsp://:8554/in", "rtsp://127.0.0.1:99999/in", "rtsp://127.0.0.1:8554",
                                 "rtsp://127.0.0.1:8554/"])
def test_a_url_that_cannot_be_right_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"expected rtsp://HOST\[:PORT\]/PATH"):
        open_sink(url)


def test_server_down_at_start_the_recording_runs_and_the_push_starts_once_it_is_up(
        gst_rtsp_available: None, clips: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from streamer.testing.rtsp_server import RtspTestServer

    stats = RunStats()
    server = RtspTestServer(path="/in", record=tmp_path / "received.h264")
    server.port = free_port()  # where the push goes; nothing listens there yet
    push = open_sink(server.url, fps=10, stats=stats)
    recording = open_sink(str(tmp_path / "rec.mp4"), fps=10)
    stop = threading.Event()

    def bring_the_server_up() -> None:
        try:
            end = time.monotonic() + 30
            while push.dropped < 3 and time.monotonic() < end:
                time.sleep(0.05)
            server.start()
            while not (push.ever_up and push.frames >= 10) and time.monotonic() < end:
                time.sleep(0.05)
        finally:
            stop.set()

    helper = threading.Thread(target=bring_the_server_up, daemon=True)
    helper.start()
    try:
        with caplog.at_level(logging.INFO, logger="streamer.sinks.rtsp"):
            src = open_source(str(clips["small"]), "door", loop=True, realtime=True)
            result = Pipeline(src, FrameRestorer(None), [push, recording], stats=stats, stop=stop).run()
        helper.join(30)
    finally:
        server.stop()
    assert push.ever_up and push.frames >= 10 and push.dropped >= 3
    assert stats.camera("door").dropped == push.dropped
    assert len(read_video(tmp_path / "rec.mp4")[0]) == result.frames_out  # every frame recorded
    assert (tmp_path / "received.h264").stat().st_size > 0
    said = [r.getMessage() for r in caplog.records]
    assert sum("RTSP output reached" in m for m in said) == 1 and not any("back" in m for m in said)
    assert stats.registry.get_sample_value("streamer_sink_reconnects_total", {"camera": "door"}) == 0


def test_a_lost_push_drops_counted_frames_then_is_back_once_and_counted(
        gst_rtsp_available: None, clips: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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
        with caplog.at_level(logging.INFO, logger="streamer.sinks.rtsp"):
            while sink.dropped < 3 and time.monotonic() < end:  # a few frames until TCP notices
                sink.write(next(frames))
            while sink.backoff.attempt < 3 and time.monotonic() < end:  # retries while it is gone
                sink.write(next(frames))
            assert not any("back" in r.getMessage() for r in caplog.records)
            dropped = sink.dropped
            server.start()  # same port
            while sink.reconnects < 1 and time.monotonic() < end:
                sink.write(next(frames))
            for _ in range(3):
                sink.write(next(frames))
        src.close()
        sink.close()
    finally:
        server.stop()
    assert dropped >= 3 and stats.camera("door").dropped == sink.dropped  # the run summary's
    assert stats.registry.get_sample_value("streamer_frames_dropped_total", {"camera": "door"}) == sink.dropped
    said = [r.getMessage() for r in caplog.records]
    assert sum(m.endswith("RTSP output back") for m in said) == 1 and said[-1].endswith("RTSP output back")
    assert stats.registry.get_sample_value("streamer_sink_reconnects_total", {"camera": "door"}) == 1
