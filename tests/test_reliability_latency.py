"""Bounded latency: a camera faster than the network drops old frames (counted) instead of queueing
them, so capture->output lag in frames and memory stay flat however long the run goes."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from conftest import make_clip
from streamer.frame import Frame
from streamer.pipeline import Pipeline
from streamer.preprocess.frames import FrameRestorer
from streamer.sources import open_source
from streamer.stats import RunStats

QUEUE_FRAMES = 2
FRAME_BYTES = 320 * 240 * 3


class SlowBackend:
    """A network at ~10 fps fed by a 30 fps camera: two frames in three must go."""

    multiple = 1

    def __call__(self, batch):
        time.sleep(0.1)
        return batch

    def close(self) -> None: ...


class LagSink:
    """Records, per written frame, how many newer frames the camera had already delivered."""

    def __init__(self, stats: RunStats, cam: str) -> None:
        self.stats, self.cam = stats, cam
        self.behind: list[int] = []
        self.memory: list[int] = []

    def write(self, frame: Frame) -> None:
        self.behind.append(self.stats.camera(self.cam).frames_in - (frame.index + 1))
        self.memory.append(tracemalloc.get_traced_memory()[0])

    def close(self) -> None: ...


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("lat") / "cam30.mp4", frames=30, width=320, height=240, fps=30)


def test_slow_network_keeps_lag_and_memory_bounded(camera_clip: Path) -> None:
    stats = RunStats()
    source = open_source(str(camera_clip), "cam", loop=True, realtime=True)  # behaves as a camera
    sink = LagSink(stats, "cam")
    stop = threading.Event()
    pipe = Pipeline(source, FrameRestorer(SlowBackend()), [sink], stats=stats, stop=stop,
                    queue_frames=QUEUE_FRAMES)
    tracemalloc.start()
    try:
        threading.Timer(4.0, stop.set).start()
        result = pipe.run()
    finally:
        tracemalloc.stop()
    assert result.frames_out >= 15 and result.dropped >= result.frames_out  # ~2 of 3 dropped
    in_flight = 2 * QUEUE_FRAMES + 2  # both queues full, one frame in the network, one being written
    assert result.frames_in - result.frames_out - result.dropped <= in_flight
    assert stats.registry.get_sample_value("streamer_frames_dropped_total", {"camera": "cam"}) == result.dropped
    # lag in frames: bounded by the queues, not growing with run time (a FIFO would lag ~2 per frame)
    assert max(sink.behind) <= in_flight + 1, sink.behind
    warm = sink.memory[5:]
    assert max(warm) - warm[0] < 8 * FRAME_BYTES, "memory grows: frames are piling up"
