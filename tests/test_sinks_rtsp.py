"""Push to a real RTSP server (gst-rtsp-server in RECORD mode) that writes what it receives."""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest

from conftest import read_video
from streamer.errors import ConfigError, SinkError
from streamer.frame import Frame
from streamer.pipeline import Pipeline
from streamer.preprocess.frames import FrameRestorer
from streamer.sinks import open_sink
from streamer.sinks.base import Delivery
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
    size = received.stat().st_size if received.exists() else 0
    frames, bad = [], []
    with av.open(str(received), format="h264") as c:
        for packet in c.demux(video=0):
            try:  # packet by packet: under a loaded full run one packet of the server's
                frames += packet.decode()  # recording was seen not to decode (twice in 28 sessions)
            except av.FFmpegError as exc:
                bad.append(str(exc))
    assert len(bad) <= 1, f"the server's recording ({size} bytes) does not decode: {bad[:3]}; " \
                          f"the sink sent {sink.frames} frames, dropped {sink.dropped}"
    assert len(frames) >= 30 and (frames[0].width, frames[0].height) == (96, 64)
    assert sink.frames == 41 and sink.dropped == 0
    assert sink.delivery() == Delivery(f"RTSP output {server.url}", 41, 41)  # not a failed output


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


def test_push_to_nothing_drops_and_retries_without_failing(clips: dict[str, Path],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A live output that is not there is not a failed job: frames are dropped and counted, the
    connection retried with backoff; it was "cannot push RTSP (…)" and the run (recording too) ended.
    Nor is it "back" on each retry (FFmpeg connects on the first packet, not at open)."""
    sink = open_sink(f"rtsp://127.0.0.1:{free_port()}/in", fps=10)
    frames = iter(open_source(str(clips["small"]), "door"))
    with caplog.at_level(logging.INFO, logger="streamer.sinks.rtsp"):
        sink.write(next(frames))
        assert wait_until(lambda: sink.backoff.attempt == 1)
        for _ in range(2):
            sink.write(next(frames))  # within the backoff: dropped at once
        sink._retry_at = 0.0  # the next attempt now rather than after the backoff
        sink.write(next(frames))
        assert wait_until(lambda: sink.backoff.attempt == 2)
    sink.close()
    assert sink.dropped == 4 and sink.frames == 0 and not sink.ever_up
    assert sink.delivery() == Delivery(sink.delivery().output, 4, 0, "Connection refused")
    assert sink.delivery().failed
    assert [r.getMessage().split(" (")[0].split(": ", 1)[1] for r in caplog.records] == [
        "RTSP output not reached yet"] * 2
    assert "(Connection refused); frames are dropped, retry in 0.5 s, attempt 1" in caplog.records[0].getMessage()


@pytest.fixture
def silent_server():
    """``rtsp://`` URL of a server that takes TCP connections and never answers (a hung server,
    another service on the port); yields (url, connections taken so far)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    taken: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                taken.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"rtsp://127.0.0.1:{listener.getsockname()[1]}/in", taken
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in taken:
            conn.close()


class SlowRestorer(FrameRestorer):
    """A model that takes 30 ms a frame: frames that pile up behind a stall are dropped."""

    def __call__(self, frame: Frame, timer: Any = None) -> Frame:
        time.sleep(0.03)
        return super().__call__(frame, timer)


def test_a_silent_server_holds_up_neither_the_recording_nor_close(
        silent_server: tuple[str, list], clips: dict[str, Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The push connected and muxed on the camera's output thread (and FFmpeg's connect holds the
    GIL): each retry against a server that never answers froze the run for timeout_s, so a
    realtime camera's frames piled up and were dropped before the recording saw them (reviewer:
    122 frames in, 75 recorded) and stop waited on the connect."""
    url, taken = silent_server
    stats = RunStats()
    push = RtspSink(url, fps=10, stats=stats, timeout_s=2.0)
    recording = open_sink(str(tmp_path / "rec.mp4"), fps=10)
    stop = threading.Event()

    def stop_after_two_attempts() -> None:
        try:
            wait_until(lambda: push.backoff.attempt >= 2 and len(taken) >= 3, 60)
        finally:
            stop.set()

    helper = threading.Thread(target=stop_after_two_attempts, daemon=True)
    helper.start()
    with caplog.at_level(logging.INFO, logger="streamer.sinks.rtsp"):
        src = open_source(str(clips["small"]), "door", loop=True, realtime=True)
        result = Pipeline(src, SlowRestorer(None), [push, recording], stats=stats, stop=stop).run()
    helper.join(5)
    assert push.backoff.attempt >= 2 and push.frames == 0 and not push.ever_up
    times = read_video(tmp_path / "rec.mp4")[0]
    assert len(times) == result.frames_out >= 20
    steps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    assert set(steps) == {0.1}  # every frame the camera gave, none dropped while the push waited
    assert stats.camera("door").dropped == push.dropped  # the push's drops are its own only
    said = [r.getMessage() for r in caplog.records]
    assert "RTSP output not reached yet (no answer within 2 s); frames are dropped" in said[0]
    assert not any("Invalid data" in m for m in said)


@pytest.mark.parametrize("scheme", ["rtsp", "rtsps"])
def test_close_breaks_off_a_connect_to_a_silent_server(silent_server: tuple[str, list],
                                                       clips: dict[str, Path], scheme: str) -> None:
    """rtsps: the TLS handshake ran under the sink's lock, so write() and close() waited on it."""
    url, taken = silent_server
    push = RtspSink(url.replace("rtsp://", f"{scheme}://"), fps=10, timeout_s=60.0)
    frame = next(iter(open_source(str(clips["small"]), "door")))
    done = threading.Event()
    threading.Thread(target=lambda: (push.write(frame), done.set()), daemon=True).start()
    assert done.wait(30)  # write() hands the frame over; it does not wait for the server
    assert wait_until(lambda: len(taken) >= 1 and bool(select.select([taken[0]], [], [], 0)[0]))  # hello sent
    again = threading.Event()
    threading.Thread(target=lambda: (push.write(frame), again.set()), daemon=True).start()
    assert again.wait(30)  # nor while the sender waits on the server's handshake
    assert wait_until(lambda: len(taken) >= 1)  # the connect is under way
    closed = threading.Event()
    threading.Thread(target=lambda: (push.close(), closed.set()), daemon=True).start()
    assert closed.wait(30)  # not the 60 s the server is given to answer
    assert push.dropped == 2 and push.frames == 0
    delivery = push.delivery()  # not the abort close() caused, and no verdict on the server
    assert not delivery.failed
    assert delivery.summary().endswith(": 0 of 2 frames delivered (the run ended before it connected)")


def test_an_error_retrying_cannot_mend_fails_the_camera_instead_of_the_sender_dying_silently(
        clips: dict[str, Path]) -> None:
    """An error that is not the network's (a host name IDNA cannot encode here; an unknown
    encoder) ended the sender thread with a traceback on stderr, and the run went on with the
    output dead and its frames uncounted."""
    stats = RunStats()
    push = RtspSink("rtsp://a..b/in", fps=10, stats=stats)
    frames = iter(open_source(str(clips["small"]), "door"))
    push.write(next(frames))
    assert wait_until(lambda: push._failed is not None)
    with pytest.raises(SinkError, match=r"rtsp://a\.\.b/in: RTSP output failed"):
        push.write(next(frames))
    with pytest.raises(SinkError, match="RTSP output failed"):
        push.close()
    assert push.dropped == stats.camera("door").dropped == 1


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
    delivery = sink.delivery()  # some went out: the summary's line, not the run's failure
    assert not delivery.failed and 0 < delivery.delivered == sink.frames < delivery.frames and delivery.error


def test_a_frame_the_encoder_held_back_before_any_connection_is_not_delivered() -> None:
    """FFmpeg connects on the first packet. An encoder that holds its first frame back (0 packets:
    a lookahead) and then cannot reach the server on the next one had counted that first frame as
    delivered: a push that never connected read as "1 of 2 frames delivered", not a failure."""
    import numpy as np

    class HeldThenRefused:
        calls = 0

        def encode(self, image: Any, pts_s: float) -> int:
            self.calls += 1
            if self.calls == 1:
                return 0  # held back: nothing went out, no connection yet
            raise ConnectionRefusedError(111, "Connection refused")  # the first packet's connect

    encoder = HeldThenRefused()
    push = RtspSink(f"rtsp://127.0.0.1:{free_port()}/in", fps=10)
    push._open = lambda width, height: setattr(push, "_video", encoder)  # type: ignore[method-assign]
    image = np.zeros((64, 96, 3), np.uint8)
    push.write(Frame(image, 0.0, 0, "door"))
    assert wait_until(lambda: encoder.calls == 1 and not push._pending)
    push.write(Frame(image, 0.1, 1, "door"))
    assert wait_until(lambda: push.backoff.attempt == 1)
    push.close()
    assert push.delivery().delivered == 0 and push.delivery().failed, push.delivery()
