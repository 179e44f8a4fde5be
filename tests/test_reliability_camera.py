"""Camera loss: the RTSP server feeding a run is killed and restarted 10 times; the run reconnects
each time, the output file keeps growing and decodes, /healthz and the reconnect counter follow.
A USB camera unplugged and plugged back is reopened by its path the same way."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

from conftest import read_video
from streamer.api import run
from streamer.config import RunConfig
from streamer.sinks.view import ViewSink
from streamer.stats import RunStats
from streamer.testing.wait import wait_until

RESTARTS = 10


def _healthz(view: ViewSink) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", view.port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


def test_run_survives_ten_camera_restarts(rtsp_server, fast_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "cam.mp4"
    cfg = RunConfig.model_validate({
        "source": {"url": rtsp_server.url, "name": "cam", "timeout_s": 2.0,
                   "reconnect": {"initial_s": 0.1, "factor": 2.0, "max_s": 1.0}},
        "sinks": [str(out)],
        "model": {"name": str(fast_weights), "arch": "fast"},
        "backend": {"threads": 1},
        "encoder": {"keyframe_s": 0.2, "preset": "ultrafast"},  # a fragment every 0.2 s
        "stats_every_s": 0,
    })
    stats = RunStats()
    stop = threading.Event()
    results: list = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(run(cfg, stats=stats, stop=stop))
        except BaseException as exc:  # noqa: BLE001  reported below, with the main thread's asserts
            errors.append(exc)

    runner = threading.Thread(target=target)
    view = ViewSink(stats=stats, port=0)  # the operator's /healthz, reading the run's stats
    runner.start()
    try:
        cam = stats.camera("cam")
        assert wait_until(lambda: cam.frames_out >= 10), f"no frames from the camera {errors}"
        assert _healthz(view) == 200
        sizes = [out.stat().st_size]
        for i in range(1, RESTARTS + 1):
            rtsp_server.stop()  # the camera loses power
            assert wait_until(lambda: not cam.up), f"loss {i} not noticed"
            assert cam.last_error and _healthz(view) == 503
            before = cam.frames_out
            rtsp_server.start()  # same port
            assert wait_until(lambda: cam.up and cam.frames_out >= before + 5), f"no frames after restart {i}"
            assert cam.reconnects == i and _healthz(view) == 200
            assert wait_until(lambda: out.stat().st_size > sizes[-1]), f"output stopped growing after restart {i}"
            sizes.append(out.stat().st_size)
            assert runner.is_alive() and not errors
    finally:
        stop.set()
        runner.join(30)
        view.close()
    assert not runner.is_alive() and not errors, errors
    result = results[0]
    assert result.reconnects == RESTARTS and not result.interrupted
    assert stats.registry.get_sample_value("streamer_reconnects_total", {"camera": "cam"}) == RESTARTS
    times, size, _ = read_video(out)
    assert size == (160, 120) and len(times) == result.frames_out
    assert all(b > a for a, b in zip(times, times[1:]))  # one clock over all outages


class _FifoCamera:
    """A USB camera stand-in: an MJPEG stream written into a FIFO at a fixed path, 20 fps.

    ``unplug()`` removes the path (then ends the stream), ``plug()`` makes it again: what a V4L2
    node does when the cable is pulled. V4L2 itself needs a kernel device (v4l2loopback), which a
    container does not have; the reconnect-by-path logic is the same for both."""

    def __init__(self, path: Path, size: tuple[int, int] = (160, 120)) -> None:
        self.path, self.size = path, size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def plug(self) -> None:
        import os

        os.mkfifo(self.path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        self.path.unlink(missing_ok=True)  # first: a reader reopening now gets ENOENT, not a FIFO with no writer
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _write(self) -> None:
        import os

        import av
        import numpy as np

        w, h = self.size
        try:
            # os.open waits for the reader without holding the GIL (PyAV's own open would not)
            pipe = open(os.open(self.path, os.O_WRONLY), "wb", buffering=0)
            with pipe, av.open(pipe, "w", format="mjpeg") as out:
                stream = out.add_stream("mjpeg", rate=20)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuvj420p"
                i = 0
                while not self._stop.is_set():
                    img = np.full((h, w, 3), (i * 7) % 256, np.uint8)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        out.mux(packet)
                    i += 1
                    time.sleep(0.05)
        except (av.FFmpegError, OSError):
            pass  # the reader went away (broken pipe): a camera does not care


def test_usb_camera_unplugged_is_reopened_by_path(tmp_path: Path) -> None:
    from streamer.config import ReconnectConfig
    from streamer.pipeline import Pipeline
    from streamer.preprocess.frames import FrameRestorer
    from streamer.sinks.null import NullSink
    from streamer.sources.usb import UsbSource

    class FifoUsbSource(UsbSource):
        demuxer = "mjpeg"  # the only difference from a real camera: no V4L2 ioctls on a FIFO

    device = tmp_path / "video0"
    camera = _FifoCamera(device)
    camera.plug()
    stats = RunStats()
    src = FifoUsbSource(str(device), "dashcam", timeout_s=2.0, stats=stats,
                        reconnect=ReconnectConfig(initial_s=0.1, max_s=1.0))
    sink = NullSink()
    stop = threading.Event()
    pipe = Pipeline(src, FrameRestorer(None), [sink], stats=stats, stop=stop)
    results: list = []
    runner = threading.Thread(target=lambda: results.append(pipe.run()))
    runner.start()
    try:
        cam = stats.camera("dashcam")
        assert wait_until(lambda: sink.frames >= 5), "no frames from the FIFO camera"
        for i in (1, 2):
            camera.unplug()
            assert wait_until(lambda: not cam.up), f"unplug {i} not noticed"
            before = sink.frames
            camera.plug()
            assert wait_until(lambda: cam.up and sink.frames >= before + 5), f"not reopened after replug {i}"
            assert cam.reconnects == i
    finally:
        stop.set()
        runner.join(20)
        if camera._thread is not None and camera._thread.is_alive():
            camera.unplug()
    assert not runner.is_alive() and results[0].reconnects == 2


def test_stable_usb_links_are_cameras_too() -> None:
    """A replugged camera may come back as /dev/video2; its /dev/v4l/by-id link does not change."""
    from streamer.sources import open_source
    from streamer.sources.usb import UsbSource

    src = open_source("/dev/v4l/by-id/usb-Cam_123-video-index0", "dashcam")
    assert isinstance(src, UsbSource) and src.live
