"""RTSP server sink: a real gst-rtsp-server on 127.0.0.1, pulled by a real PyAV/FFmpeg client."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import av
import numpy as np
import pytest

from streamer.errors import ConfigError, SinkError
from streamer.frame import Frame
from streamer.sinks.base import Sink
from streamer.sinks.rtsp_serve import RtspServeSink, check_available, open_rtsp_serve_sink, parse_url

TOKEN = "rtsp-test-token-42"
_REASON = check_available()
needs_gst = pytest.mark.skipif(_REASON is not None, reason=f"GStreamer RTSP server unavailable: {_REASON}")
CLIENT_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}  # us; a broken server fails, not hangs


def _picture(i: int, width: int = 320, height: int = 240) -> np.ndarray:
    x = (np.arange(width)[None, :] + 8 * i) % 256
    y = np.arange(height)[:, None] % 256
    return np.stack(np.broadcast_arrays(x, y, 255 - x), axis=-1).astype(np.uint8)


class Feeder:
    """Writes frames at 25 fps from a thread, as the pipeline does, until stopped."""

    def __init__(self, sink: RtspServeSink, size: tuple[int, int] = (320, 240)) -> None:
        self.sink, self.size = sink, size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            self.sink.write(Frame(_picture(i, *self.size), i / 25, i, "front", captured_s=time.monotonic()))
            i += 1
            time.sleep(0.04)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def pull(url: str, n: int) -> list[np.ndarray]:
    """Decode ``n`` frames with FFmpeg's RTSP client (PyAV), as ffplay/OpenCV would."""
    images = []
    with av.open(url, options=CLIENT_OPTIONS) as container:
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="rgb24"))
            if len(images) == n:
                break
    return images


@pytest.fixture
def served() -> Iterator[RtspServeSink]:
    sink = RtspServeSink("rtsp-serve://127.0.0.1:0/clean", 25.0, 320, 240)
    try:
        yield sink
    finally:
        sink.close()


@needs_gst
def test_client_pulls_50_decodable_frames(served: RtspServeSink) -> None:
    assert isinstance(served, Sink)
    assert served.port > 0 and served.client_url == f"rtsp://127.0.0.1:{served.port}/clean"
    with Feeder(served):
        images = pull(served.client_url, 50)
    assert len(images) == 50
    assert all(img.shape == (240, 320, 3) for img in images)
    assert np.abs(images[0].astype(int) - images[-1].astype(int)).mean() > 5  # live video, not a still


@needs_gst
def test_clients_share_the_stream(served: RtspServeSink) -> None:
    results: list[int] = []
    with Feeder(served):
        readers = [threading.Thread(target=lambda: results.append(len(pull(served.client_url, 15))))
                   for _ in range(2)]
        for r in readers:
            r.start()
        for r in readers:
            r.join(60)
    assert results == [15, 15]


@needs_gst
def test_size_from_first_frame_and_scaled_after() -> None:
    sink = open_rtsp_serve_sink("rtsp-serve://127.0.0.1:0/cam", fps=25.0)
    try:
        assert sink.size is None
        sink.write(Frame(_picture(0, 256, 144), 0.0, 0, "front"))
        assert sink.size == (256, 144)
        with Feeder(sink, size=(320, 240)):  # other sizes are scaled to the stream's
            images = pull(sink.client_url, 5)
        assert images[0].shape == (144, 256, 3)
    finally:
        sink.close()


@needs_gst
def test_token_means_rtsp_basic_auth() -> None:
    with RtspServeSink("rtsp-serve://127.0.0.1:0/clean", 25.0, 320, 240, token=TOKEN) as sink, Feeder(sink):
        assert sink.client_url == f"rtsp://streamer:{TOKEN}@127.0.0.1:{sink.port}/clean"
        with pytest.raises(av.error.HTTPUnauthorizedError):
            pull(f"rtsp://127.0.0.1:{sink.port}/clean", 1)
        with pytest.raises(av.error.HTTPUnauthorizedError):
            pull(f"rtsp://streamer:wrong-password@127.0.0.1:{sink.port}/clean", 1)
        assert len(pull(sink.client_url, 5)) == 5


@needs_gst
def test_port_in_use_is_a_sink_error(served: RtspServeSink) -> None:
    with pytest.raises(SinkError, match=f"cannot listen on 127.0.0.1:{served.port}"):
        RtspServeSink(f"rtsp-serve://127.0.0.1:{served.port}/other", 25.0, 320, 240)


def test_python_without_gstreamer_names_the_apt_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_GST_PYTHON", sys.executable)  # the venv: no python3-gi there
    if check_available() is None:
        pytest.skip("this interpreter has python3-gi and GstRtspServer")
    with pytest.raises(SinkError, match="apt install python3-gi gir1.2-gst-rtsp-server-1.0"):
        RtspServeSink("rtsp-serve://127.0.0.1:0/clean", 25.0, 320, 240)


def test_missing_interpreter_is_a_sink_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMER_GST_PYTHON", "/nonexistent/python3")
    with pytest.raises(SinkError, match="STREAMER_GST_PYTHON=/nonexistent/python3 is not an executable"):
        RtspServeSink("rtsp-serve://127.0.0.1:0/clean")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7"])
def test_refuses_wide_bind_without_token(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="rtsp-serve sink: binding .* without an access token"):
        RtspServeSink(f"rtsp-serve://{host}:8554/clean")


def test_url_parsing() -> None:
    assert parse_url("rtsp-serve://0.0.0.0:9000/cams/front") == ("0.0.0.0", 9000, "/cams/front")
    assert parse_url("rtsp-serve://127.0.0.1") == ("127.0.0.1", 8554, "/clean")
    assert parse_url("rtsp-serve://127.0.0.1:0/cam") == ("127.0.0.1", 0, "/cam")  # 0: any free port, not the default
    for bad in ("rtsp://127.0.0.1/x", "rtsp-serve://127.0.0.1:99999/x", "rtsp-serve://127.0.0.1/a b",
                "rtsp-serve://127.0.0.1/x?y=1"):
        with pytest.raises(ConfigError, match="rtsp-serve"):
            parse_url(bad)
