"""`streamer calib make`: varied frames from a real clip, near-duplicates skipped, seeded twins."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamer.cli import main
from streamer.export.calibration import make_calib, read_calib

SCENE_FRAMES = 6  # each scene is held for this many frames (near-duplicates of each other)


def scene(k: int, h: int = 64, w: int = 96) -> np.ndarray:
    """Scene k: its own colour, stripe frequency and direction, so scenes differ clearly."""
    rng = np.random.default_rng(k)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = np.sin((xx if k % 2 else yy) * (0.15 + 0.1 * k)) * 0.5 + 0.5
    colour = rng.uniform(0.2, 1.0, 3)
    return (stripes[..., None] * colour * 255).astype(np.uint8)


def write_clip(path: Path, scenes: int) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(scenes * SCENE_FRAMES):
            frame = av.VideoFrame.from_ndarray(scene(i // SCENE_FRAMES), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)  # explicit pts: 10 fps
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():  # flush the encoder
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "eight_scenes.mp4", 8)


@pytest.fixture(scope="module")
def clip3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "three_scenes.mp4", 3)


def thumbs(folder: Path) -> list[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for p in files]


def test_picks_n_distinct_frames(clip8: Path, tmp_path: Path) -> None:
    out = tmp_path / "calib"
    assert main(["calib", "make", str(clip8), "-o", str(out), "--frames", "5", "--size", "96x64",
                 "--dirty", "0"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["frames"]
    assert len(rows) == 5 and all(r["corruption"] is None for r in rows)
    assert len({r["index"] // SCENE_FRAMES for r in rows}) == 5  # five different scenes
    images = thumbs(out)
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(images[i] - images[j]).mean() > 0.05
    for r in rows:
        assert hashlib.sha256((out / r["file"]).read_bytes()).hexdigest() == r["sha256"]
        assert cv2.imread(str(out / r["file"])).shape == (64, 96, 3)
        assert r["pts_s"] == pytest.approx(r["index"] / 10)


def test_near_duplicates_are_skipped(clip3: Path, tmp_path: Path) -> None:
    manifest = make_calib([clip3], tmp_path / "c", frames=6, size_wh=(96, 64), dirty_share=0.0)
    scenes = [r["index"] // SCENE_FRAMES for r in manifest["frames"]]
    assert sorted(scenes) == [0, 1, 2]  # one per scene, not six from three


def test_dirty_twins_are_seeded_and_hash_is_stable(clip8: Path, tmp_path: Path) -> None:
    a = make_calib([clip8], tmp_path / "a", frames=6, size_wh=(96, 64), dirty_share=0.5, seed=3)
    b = make_calib([clip8], tmp_path / "b", frames=6, size_wh=(96, 64), dirty_share=0.5, seed=3)
    c = make_calib([clip8], tmp_path / "c", frames=6, size_wh=(96, 64), dirty_share=0.5, seed=4)
    twins = [r for r in a["frames"] if r["corruption"]]
    assert len(twins) == 3 and twins[0]["corruption"].startswith("dirt seed=[3,")
    assert a["data_sha256"] == b["data_sha256"] != c["data_sha256"]
    loaded = read_calib(tmp_path / "a")
    assert loaded.sha256 == a["data_sha256"] and len(loaded.clean()) == 3
    assert read_calib(tmp_path / "a", max_frames=2).sha256 != loaded.sha256


def test_reads_frames_straight_from_a_video(clip8: Path) -> None:
    calib = read_calib(clip8, max_frames=4, size_hw=(32, 48))
    assert len(calib.frames) == 4 and calib.frames[0].shape == (32, 48, 3)
    assert calib.sha256 == read_calib(clip8, max_frames=4, size_hw=(32, 48)).sha256


def test_tensorrt_cache_key_and_batches(clip8: Path) -> None:
    """TensorRT < 10 calibration caches: one key per model, data, TensorRT version and shape."""
    from streamer.export.tensorrt_build import calib_cache_key, calibration_batches

    calib = read_calib(clip8, max_frames=5)
    key = calib_cache_key("m" * 64, calib.sha256, "8.6.1", (2, 32, 48))
    others = {calib_cache_key("n" * 64, calib.sha256, "8.6.1", (2, 32, 48)),
              calib_cache_key("m" * 64, "d" * 64, "8.6.1", (2, 32, 48)),
              calib_cache_key("m" * 64, calib.sha256, "8.6.2", (2, 32, 48)),
              calib_cache_key("m" * 64, calib.sha256, "8.6.1", (1, 32, 48))}
    assert key not in others and len(others) == 4
    batches = calibration_batches(calib, (2, 32, 48))
    assert [b.shape for b in batches] == [(2, 3, 32, 48)] * 2 and batches[0].dtype == np.float32
    assert 0.0 <= batches[0].min() and batches[0].max() <= 1.0


def test_remake_replaces_the_old_frames(clip8: Path, tmp_path: Path) -> None:
    out = tmp_path / "calib"
    make_calib([clip8], out, frames=6, size_wh=(96, 64), dirty_share=0.5)
    (out / "notes.txt").write_text("mine")
    manifest = make_calib([clip8], out, frames=2, size_wh=(96, 64), dirty_share=0.0)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in manifest["frames"])
    assert (out / "notes.txt").exists()  # only files the old manifest listed are removed


def test_default_calib_is_the_shipped_set_from_any_directory(tmp_path, monkeypatch):
    """`--int8` / `Cleaner(int8=True)` outside the repo root (an app's own folder, a wheel
    install) calibrate on the frames shipped inside the package, the repo's calib/."""
    from streamer.export.calibration import BUNDLED_CALIB, resolve_calib

    repo_calib = Path(__file__).resolve().parents[1] / "calib"
    shipped = sorted(p.name for p in BUNDLED_CALIB.iterdir())
    assert shipped == sorted(p.name for p in repo_calib.iterdir())
    assert {"manifest.json", "LICENSES.md"} <= set(shipped)  # the licences travel with the frames
    monkeypatch.chdir(tmp_path)
    assert resolve_calib(None) == BUNDLED_CALIB and resolve_calib("calib") == BUNDLED_CALIB
    assert read_calib(None).sha256 == read_calib(repo_calib).sha256
    (tmp_path / "calib").mkdir()  # a calib/ of the user's own wins, and so does any other path
    assert resolve_calib("calib") == Path("calib") and resolve_calib("mine") == Path("mine")


def test_an_unreadable_calibration_image_is_a_source_error(tmp_path: Path) -> None:
    from streamer.errors import SourceError

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match=r"b\.jpg: not a readable image"):
        read_calib(tmp_path)


@pytest.mark.parametrize("manifest", ["{broken", '{"frames": [{"name": "a.png"}]}', "[1, 2]"])
def test_a_damaged_manifest_is_a_source_error(manifest: str, clip8: Path, tmp_path: Path) -> None:
    """It was a JSONDecodeError/KeyError traceback from `--int8`, `export` and `calib make` alike."""
    from streamer.errors import SourceError

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(SourceError, match=r"manifest\.json: damaged calibration manifest .*delete it"):
        read_calib(tmp_path)
    with pytest.raises(SourceError, match=r"manifest\.json: damaged calibration manifest"):
        make_calib([clip8], tmp_path, frames=2, size_wh=(96, 64), dirty_share=0.0)
