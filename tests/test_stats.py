"""The fps an operator reads (stats line, /api/stats, the web panel): true under bursts, 0 when
frames stop."""

from __future__ import annotations

import threading
import time

import pytest

from streamer.stats import RateMeter, RunStats


def test_steady_frames_read_their_rate_from_the_first_second() -> None:
    meter = RateMeter(window_s=2.0)
    for k in range(50):  # 10 fps for 5 s
        meter.tick(100.0 + 0.1 * k)
        if k in (5, 30, 49):
            assert meter.rate(100.0 + 0.1 * k) == pytest.approx(10.0, rel=0.06), k


def test_batched_bursts_do_not_inflate_it() -> None:
    """Two cameras batched: frames come in pairs every 0.2 s, 10 fps in all (a smoothed 1/dt read
    far above that, most intervals being ~0)."""
    meter = RateMeter(window_s=2.0)
    for k in range(25):
        meter.tick(10.0 + 0.2 * k)
        meter.tick(10.0 + 0.2 * k + 1e-4)
    assert meter.rate(10.0 + 0.2 * 24 + 0.1) == pytest.approx(10.0, rel=0.06)


def test_it_falls_to_zero_when_frames_stop() -> None:
    meter = RateMeter(window_s=2.0)
    for k in range(30):
        meter.tick(0.1 * k)
    assert meter.rate(2.9) > 9
    assert 0 < meter.rate(3.9) < 6  # a second without frames: half the window is empty
    assert meter.rate(5.0) == 0.0
    assert RateMeter().rate() == 0.0


def test_camera_state_reports_the_meter() -> None:
    stats = RunStats(model="fast", backend="torch")
    stats.on_frame_out("cam", captured_s=0.0)
    snap = stats.snapshot()["cameras"]["cam"]
    assert snap["frames_out"] == 1 and snap["fps"] == 0.0  # one frame is no rate yet


def test_every_counter_has_a_sample_from_the_start() -> None:
    """A dashboard's `rate(streamer_reconnects_total[5m])` must read 0 before the first reconnect,
    not "no data"."""
    from prometheus_client import generate_latest

    stats = RunStats()
    stats.camera("gate")
    text = generate_latest(stats.registry).decode()
    for name in ("frames_in", "frames_out", "frames_dropped", "reconnects"):
        assert f'streamer_{name}_total{{camera="gate"}} 0.0' in text, name


def test_the_slowest_call_is_kept_whatever_thread_reports_it() -> None:
    """A site's batch threads report network times at once: a check then a set apart let a
    shorter call overwrite a longer one (and stopping wait too little for a call in progress)."""

    class SlowToCompare(float):
        def __gt__(self, other: object) -> bool:
            time.sleep(0.05)  # the other thread reports meanwhile
            return float(self) > other  # type: ignore[operator]

    stats = RunStats()
    long = threading.Thread(target=stats.on_stage, args=("a", "network", SlowToCompare(5.0)))
    short = threading.Thread(target=stats.on_stage, args=("b", "network", SlowToCompare(3.0)))
    long.start()
    time.sleep(0.02)
    short.start()
    long.join()
    short.join()
    assert stats.slowest_call_s == 5.0
