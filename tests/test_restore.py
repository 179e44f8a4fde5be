from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import read_video
from streamer.api import restore
from streamer.cli import main


def _images(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for name, img in [("rgb.png", rng.integers(0, 256, (40, 52, 3), np.uint8)),
                      ("photo.jpg", rng.integers(0, 256, (33, 47, 3), np.uint8)),
                      ("gray.bmp", rng.integers(0, 256, (20, 30), np.uint8)),
                      ("alpha.png", rng.integers(0, 256, (24, 24, 4), np.uint8))]:
        cv2.imwrite(str(root / name), img)
        paths.append(root / name)
    return paths


def test_restore_images_and_videos(clips: dict[str, Path], fast_weights: Path, tmp_path: Path) -> None:
    inputs = _images(tmp_path) + [clips["audio"], clips["offset"]]
    out = tmp_path / "out"
    results = restore(inputs, out, str(fast_weights), "torch", threads=1)
    assert [r.ok for r in results] == [True] * 6
    assert sorted(p.name for p in out.iterdir()) == [
        "alpha.png", "audio.mp4", "gray.png", "offset.mp4", "photo.png", "rgb.png"]
    assert cv2.imread(str(out / "photo.png")).shape == (33, 47, 3)
    assert cv2.imread(str(out / "alpha.png"), cv2.IMREAD_UNCHANGED).shape == (24, 24, 4)
    for clip in ("audio", "offset"):
        times_in, size_in, dur_in = read_video(clips[clip])
        times_out, size_out, dur_out = read_video(out / f"{clip}.mp4")
        assert times_out == pytest.approx(times_in, abs=1e-3) and size_out == size_in
        assert dur_out == pytest.approx(dur_in, abs=0.05)
    with av.open(str(out / "audio.mp4")) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert sum(1 for p in c.demux(audio) if p.size) >= 10  # copied through, packet for packet


def test_a_folder_a_single_path_and_webp_tiff_pictures(clips: dict[str, Path], fast_weights: Path,
                                                     tmp_path: Path) -> None:
    """A folder stands for the pictures and videos in it (other files skipped); one path need not
    be a list; WebP and TIFF come back as pictures, not one-frame videos."""
    folder = tmp_path / "in"
    folder.mkdir()
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)
    cv2.imwrite(str(folder / "a.webp"), img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    cv2.imwrite(str(folder / "b.tif"), img)
    (folder / "c.mp4").write_bytes(clips["small"].read_bytes())
    (folder / "notes.txt").write_text("not media")
    results = restore(folder, tmp_path / "out", str(fast_weights), threads=1)
    assert [(r.input.name, r.output.name, r.frames) for r in results] == [
        ("a.webp", "a.png", 1), ("b.tif", "b.png", 1), ("c.mp4", "c.mp4", 12)]
    assert cv2.imread(str(tmp_path / "out" / "b.png")).shape == (20, 30, 3)
    one = restore(str(folder / "b.tif"), tmp_path / "one", str(fast_weights), threads=1)
    assert [r.output.name for r in one] == ["b.png"]
    (tmp_path / "empty").mkdir()
    empty = restore(tmp_path / "empty", tmp_path / "none", str(fast_weights), threads=1)
    assert len(empty) == 1 and "no pictures or videos" in empty[0].error


def test_bad_inputs_are_reported_and_skipped(clips: dict[str, Path], fast_weights: Path,
                                             tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    inputs = [fake, tmp_path / "missing.jpg", broken, clips["small"]]
    results = restore(inputs, tmp_path / "out", str(fast_weights), threads=1)
    assert [r.ok for r in results] == [False, False, False, True]
    assert "not a readable video" in results[0].error and "not found" in results[1].error
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small.mp4"]  # no leftovers


def test_nothing_is_overwritten_by_a_later_input_or_the_output_itself(fast_weights: Path, tmp_path: Path) -> None:
    """Same-named photos from two folders, and a PNG restored into its own folder: the first
    keeps its output, the others are refused with the reason, the input stays as it was."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    first, second = _images(a)[0], _images(b)[0]  # both rgb.png
    cv2.imwrite(str(second), np.zeros((40, 52, 3), np.uint8))
    results = restore([first, second], tmp_path / "out", str(fast_weights), threads=1)
    assert [r.ok for r in results] == [True, False]
    assert "already writes this name" in results[1].error and str(first) in results[1].error
    assert cv2.imread(str(tmp_path / "out" / "rgb.png")).std() > 10  # the first photo's, not zeros
    before = first.read_bytes()
    (only,) = restore([first], a, str(fast_weights), threads=1)
    assert not only.ok and "would replace its input" in only.error and first.read_bytes() == before


def test_cli_exit_code_and_one_line_errors(clips: dict[str, Path], fast_weights: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("x")
    opts = ["-o", str(tmp_path / "o"), "--model", str(fast_weights), "--threads", "1"]
    assert main(["restore", str(clips["small"]), *opts]) == 0
    assert main(["restore", str(clips["small"]), str(fake), *opts]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fake.mp4" in err and "Traceback" not in err


def test_cli_int8_restores_with_the_quantized_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`streamer restore --int8` (like run, bench and eval): quantized once into the cache, used."""
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    photo = _images(tmp_path)[1]
    args = ["restore", str(photo), "-o", str(tmp_path / "o"), "--backend", "onnxruntime", "--threads", "1"]
    assert main([*args, "--int8"]) == 0
    assert len(list((tmp_path / "cache" / "int8").glob("fast-*.onnx"))) == 1
    assert cv2.imread(str(tmp_path / "o" / "photo.png")).shape == (33, 47, 3)
