"""``streamer.Cleaner``: the per-frame API gives what `streamer restore` writes, in either channel order."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import streamer
from streamer.errors import ConfigError

from conftest import skip_without_openvino
from streamer.synth.pairs import corrupt_file_image, to_uint8


@pytest.fixture(scope="module")
def dirty() -> np.ndarray:
    """A 90×130 RGB scene (odd size: not a multiple of the net's 4) under seeded synthetic dirt."""
    yy, xx = np.mgrid[0:90, 0:130].astype(np.float32)
    scene = np.stack([xx / 130, yy / 90, 0.5 + 0.4 * np.sin(xx / 9) * np.cos(yy / 7)], axis=-1)
    corrupted, _ = corrupt_file_image(scene, "cleaner", "dirt", 0)
    return to_uint8(corrupted)


def test_cleaner_matches_restore_and_keeps_channel_order(dirty: np.ndarray, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(dirty, cv2.COLOR_RGB2BGR))
    [result] = streamer.restore([tmp_path / "in.png"], tmp_path / "out", "fast", threads=1)
    written = cv2.cvtColor(cv2.imread(str(result.output)), cv2.COLOR_BGR2RGB)
    with streamer.Cleaner("fast", threads=1) as clean:
        rgb = clean(dirty)
        bgr = clean(np.ascontiguousarray(dirty[..., ::-1]), bgr=True)
        assert set(clean.timings) == {"preprocess", "network", "postprocess"}
    assert rgb.shape == dirty.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - dirty).max() > 10  # the shipped model did change the dirt
    np.testing.assert_array_equal(rgb, written)
    np.testing.assert_array_equal(bgr[..., ::-1], rgb)


def test_cleaner_on_openvino_agrees_with_torch(dirty: np.ndarray) -> None:
    skip_without_openvino()
    with streamer.Cleaner("fast", threads=1) as a, streamer.Cleaner("fast", "openvino", threads=1) as b:
        assert np.abs(a(dirty).astype(int) - b(dirty)).max() <= 2  # OpenVINO's uint8 path


def test_one_cleaner_per_thread_opens_together(dirty: np.ndarray) -> None:
    """docs/api.md's pattern for several cameras: Cleaners opened at once in threads (the ONNX
    export behind onnxruntime keeps global state; unguarded, two at once fail)."""
    import threading

    results: list = []

    def camera() -> None:
        try:
            with streamer.Cleaner("fast", "onnxruntime", threads=1) as clean:
                results.append(clean(dirty))
        except Exception as exc:  # noqa: BLE001 - reported below, per thread
            results.append(exc)

    threads = [threading.Thread(target=camera) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 3 and all(isinstance(r, np.ndarray) for r in results), results
    np.testing.assert_array_equal(results[0], results[1])


def test_one_cleaner_called_from_two_threads_takes_turns(dirty: np.ndarray) -> None:
    """Shared by two threads, OpenVINO's one infer request raised "Infer Request is busy" from deep
    inside openvino; calls now take turns, and close() waits for the call in progress."""
    skip_without_openvino()
    import threading

    clean = streamer.Cleaner("fast", "openvino", threads=1)
    want = clean(dirty)
    outs: list = []

    def camera() -> None:
        try:
            outs.extend(clean(dirty) for _ in range(6))
        except Exception as exc:  # noqa: BLE001 - reported below
            outs.append(exc)

    threads = [threading.Thread(target=camera) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    clean.close()
    assert len(outs) == 12 and all(isinstance(o, np.ndarray) and np.array_equal(o, want) for o in outs), \
        [o for o in outs if not isinstance(o, np.ndarray)][:1]


def test_cleaner_tiles_frames_above_the_auto_tile_size(dirty: np.ndarray, monkeypatch) -> None:
    import streamer.cleaner as cleaner

    monkeypatch.setattr(cleaner, "AUTO_TILE_PIXELS", 64 * 64)
    monkeypatch.setattr(cleaner, "AUTO_TILE", 64)
    with streamer.Cleaner("fast", threads=1, overlap=16) as clean:
        out = clean(dirty)
        assert clean._tiled is not None and clean._tiled.tiler is not None
    assert out.shape == dirty.shape


def test_cleaner_refuses_what_it_cannot_clean(dirty: np.ndarray) -> None:
    clean = streamer.Cleaner("fast", threads=1)
    for bad, what in [(dirty.astype(np.float32), "float32"), (dirty[..., 0], "(90, 130) uint8"),
                      ([[0]], "list")]:
        with pytest.raises(ConfigError, match=r"frame is .*Cleaner takes H×W×3 uint8") as err:
            clean(bad)
        assert what in str(err.value)
    with pytest.raises(ConfigError, match=r"frame is \(0, 64, 3\): empty"):
        clean(np.zeros((0, 64, 3), np.uint8))
    clean.close()
    with pytest.raises(ConfigError, match="closed"):
        clean(dirty)


def test_cleaner_call_documents_the_frame_it_takes() -> None:
    """help(clean) is where an integrator looks for dtype, value range and channel order."""
    doc = streamer.Cleaner.__call__.__doc__ or ""
    for what in ("H×W×3 uint8", "0-255", "RGB", "BGR", "bgr=True", "same shape", "thread"):
        assert what in doc, what


def test_cleaner_model_is_a_name_or_a_path(dirty: np.ndarray) -> None:
    """A Path to weights is what an app has (typed as such, so a type checker accepts it); None or a
    number is one line naming `model`, not pathlib's TypeError."""
    import typing

    from streamer.shipped import PACKAGE

    assert Path in typing.get_args(typing.get_type_hints(streamer.Cleaner.__init__)["model"])
    assert Path in typing.get_args(typing.get_type_hints(streamer.restore)["model"])
    with streamer.Cleaner(PACKAGE / "weights" / "fast.safetensors", threads=1) as clean:
        assert clean(dirty).shape == dirty.shape
    for bad in (None, 3):
        with pytest.raises(ConfigError, match=rf"^model {bad}: give a registered name"):
            streamer.Cleaner(bad)  # type: ignore[arg-type]


def test_cleaner_options_are_checked_by_their_own_names() -> None:
    with pytest.raises(ConfigError, match=r"tile -3 must be a positive side"):
        streamer.Cleaner("fast", threads=1, tile=-3)
    with pytest.raises(ConfigError, match="calib= calibrates an INT8 model: add int8=True"):
        streamer.Cleaner("fast", calib="calib/")
    with pytest.raises(ConfigError, match=r"overlap=100: use 0 to tile // 2 \(8\) for tile=16"):
        streamer.Cleaner("fast", tile=16, overlap=100)  # was clamped to 8 without a word
    with streamer.Cleaner("fast", threads=1, tile=48) as clean:  # no overlap given: half a small tile
        assert clean.restorer.tiler.overlap == 24
