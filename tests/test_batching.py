"""The stream muxer: per-camera queues, one frame per camera per batch, batch timeout, drops."""

from __future__ import annotations

import threading
import time

import numpy as np

from streamer.batching import BatchRestorer, Lane, Muxer
from streamer.frame import Frame


def frame(cam: str, i: int, h: int = 8, w: int = 8) -> Frame:
    return Frame(np.full((h, w, 3), i, np.uint8), i / 10, i, cam, captured_s=time.monotonic())


def test_live_lane_keeps_the_latest_frames_and_counts_drops() -> None:
    lane = Lane("cam", live=True, capacity=2)
    mux = Muxer([lane], threading.Event())
    assert [mux.put(lane, frame("cam", i)) for i in range(4)] == [0, 0, 1, 1]
    assert [f.index for _, f in mux.take(8, 0.0)] == [2]  # oldest kept frame first, one per call
    assert [f.index for _, f in mux.take(8, 0.0)] == [3]


def test_file_lane_waits_for_room_instead_of_dropping() -> None:
    lane = Lane("file", live=False, capacity=1)
    mux = Muxer([lane], threading.Event())
    mux.put(lane, frame("file", 0))
    putter = threading.Thread(target=mux.put, args=(lane, frame("file", 1)))
    putter.start()
    putter.join(0.3)
    assert putter.is_alive()  # blocked: the queue is full and files never drop
    assert [f.index for _, f in mux.take(1, 0.0)] == [0]
    putter.join(5)
    assert not putter.is_alive() and [f.index for _, f in mux.take(1, 0.0)] == [1]


def test_batch_has_one_frame_per_camera_up_to_max_batch_and_rotates() -> None:
    lanes = [Lane(f"c{i}", live=True, capacity=4) for i in range(3)]
    mux = Muxer(lanes, threading.Event())
    for i in range(2):
        for lane in lanes:
            mux.put(lane, frame(lane.name, i))
    first = mux.take(2, 0.0)
    second = mux.take(2, 0.0)
    assert [(ln.name, f.index) for ln, f in first] == [("c0", 0), ("c1", 0)]
    assert [(ln.name, f.index) for ln, f in second] == [("c1", 1), ("c2", 0)]  # next start: c1
    assert sum(len(ln.frames) for ln in lanes) == 2  # nothing lost, nothing taken twice


def test_timeout_sends_a_partial_batch_and_end_returns_none() -> None:
    a, b = Lane("a", live=True, capacity=2), Lane("b", live=True, capacity=2)
    mux = Muxer([a, b], threading.Event())
    mux.put(a, frame("a", 0))
    batch = mux.take(2, 0.2)  # b never delivers: wait the timeout, then go with what is there
    assert [ln.name for ln, _ in batch] == ["a"]
    mux.end(a)
    mux.close(b)
    assert mux.take(2, 0.2) is None and mux.finished() == [a]


def test_batch_waits_for_a_second_camera_within_the_timeout() -> None:
    a, b = Lane("a", live=True, capacity=2), Lane("b", live=True, capacity=2)
    mux = Muxer([a, b], threading.Event())
    mux.put(a, frame("a", 0))
    threading.Timer(0.05, mux.put, args=(b, frame("b", 0))).start()
    assert {ln.name for ln, _ in mux.take(2, 5.0)} == {"a", "b"}


class Doubler:
    multiple = 4

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return np.clip(batch * 2, 0, 1)

    def close(self) -> None: ...


def test_restorer_groups_equal_sizes_into_one_call_and_keeps_order() -> None:
    backend = Doubler()
    lanes = [Lane(n, live=True, capacity=1, keep_original=(n == "b")) for n in "abc"]
    items = [(lanes[0], frame("a", 10)), (lanes[1], frame("b", 20, 6, 10)), (lanes[2], frame("c", 30))]
    stages: list[tuple[str, str]] = []
    out = BatchRestorer(backend)(items, lambda cam, stage, s: stages.append((cam, stage)))
    assert sorted(backend.shapes) == [(1, 3, 8, 12), (2, 3, 8, 8)]  # two sizes -> two calls, padded
    assert [f.source for f in out] == ["a", "b", "c"] and out[1].image.shape == (6, 10, 3)
    assert int(out[0].image[0, 0, 0]) == 20 and int(out[2].image[0, 0, 0]) == 60
    assert out[1].original is not None and out[0].original is None
    assert ("c", "network") in stages and len(stages) == 9


def test_restorer_splits_calls_to_the_backends_max_batch() -> None:
    """A fixed-size export takes one frame, or one tile, per call (its batch is fixed at 1)."""
    backend = Doubler()
    backend.max_batch = 1
    lanes = [Lane(n, live=True, capacity=1) for n in "abc"]
    out = BatchRestorer(backend)([(ln, frame(ln.name, 10)) for ln in lanes])
    assert backend.shapes == [(1, 3, 8, 8)] * 3 and [int(f.image[0, 0, 0]) for f in out] == [20] * 3
    backend.shapes.clear()
    backend.input_hw = (8, 8)  # larger frames go in 8x8 tiles
    BatchRestorer(backend)([(lanes[0], frame("a", 10, 16, 16))])
    assert len(backend.shapes) > 1 and set(backend.shapes) == {(1, 3, 8, 8)}


class Uint8Doubler:
    """A uint8 backend (``uint8_io``) with two calls in flight at most."""

    multiple, uint8_io, inflight = 4, True, 2

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.open = self.most = 0

    def start_uint8(self, images: np.ndarray) -> np.ndarray:
        self.shapes.append(images.shape)
        self.open += 1
        self.most = max(self.most, self.open)
        return np.minimum(images.astype(int) * 2, 255).astype(np.uint8)

    def wait_uint8(self, handle: np.ndarray) -> np.ndarray:
        self.open -= 1
        return handle

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise AssertionError("the float path")

    def close(self) -> None: ...


def test_restorer_keeps_inflight_calls_at_most_across_batches_of_two_sizes() -> None:
    """Batches overlap on the uint8 path, yet no more calls than ``inflight`` are ever started and
    not waited for (a backend reuses a slot's buffers ``inflight`` calls later)."""
    backend = Uint8Doubler()
    restorer = BatchRestorer(backend)
    assert restorer.depth == 2
    lanes = [Lane(n, live=True, capacity=1) for n in "ab"]
    first = restorer.submit([(lanes[0], frame("a", 10)), (lanes[1], frame("b", 20, 6, 10))])
    second = restorer.submit([(lanes[0], frame("a", 30)), (lanes[1], frame("b", 40, 6, 10))])
    assert backend.most == 2 and restorer.calls == 4
    assert sorted(backend.shapes[:2]) == [(1, 8, 8, 3), (1, 8, 12, 3)]  # padded to the multiple
    out = restorer.finish(first) + restorer.finish(second)
    assert [int(f.image[0, 0, 0]) for f in out] == [20, 40, 60, 80] and out[1].image.shape == (6, 10, 3)
    assert backend.open == 0
