"""Bad input corpus: each case is one stderr line naming the problem, exit 1, no traceback (unless
--debug), and earlier outputs intact. Most cases call ``streamer.cli.main`` in-process (cheap on
2 cores); a few run the real `streamer` process to prove what a user sees.

Pictures a user expects to work (16-bit, grayscale, alpha, 1x1) are restored, see
``test_unusual_pictures_are_restored``; the 10000x10000 one is refused above a stated limit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import pytest

from conftest import make_clip
from streamer.cli import main

ORIN_SIDECAR = {"name": "Orin", "capability": "8.7"}


def _tiny_classifier(path: Path, ir_version: int = 8) -> Path:
    """An ONNX model with a picture input (N×3×H×W) but class scores out: not ours."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], np.zeros(8 * 27, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("GlobalAveragePool", ["f"], ["g"]),
         helper.make_node("Flatten", ["g"], ["scores"])],
        "classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 8])], [w])
    # IR 8, as torch's exporter writes for opset 17: onnx's newest IR is more than the
    # onnxruntime that Python 3.10 resolves (1.23) loads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)
    onnx.save(model, str(path))
    return path


def _engine(root: Path, trt: str, gpu: dict[str, str]) -> Path:
    from streamer.export.sidecar import Sidecar, write_sidecar

    engine = root / "fast.engine"
    engine.write_bytes(b"serialized elsewhere")
    write_sidecar(engine, Sidecar(model="fast", format="engine", precision="fp16", file=engine.name,
                                  tensorrt_version=trt, gpu=gpu))
    return engine


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, fast_weights: Path) -> dict[str, Path]:
    """Every bad (and unusual) input, made once."""
    import torch

    from streamer.models import get_spec
    from streamer.models.weights import save_weights

    root = tmp_path_factory.mktemp("corpus")
    c: dict[str, Path] = {"weights": fast_weights, "clip": make_clip(root / "clip.mp4", frames=6)}
    rng = np.random.default_rng(0)
    (root / "empty.mp4").write_bytes(b"")
    c["empty.mp4"] = root / "empty.mp4"
    whole = make_clip(root / "whole.mp4", frames=20).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # moov (at the end) is gone
    c["truncated.mp4"] = root / "truncated.mp4"
    (root / "notes.mp4").write_text("meeting notes, not a video\n")
    c["notes.mp4"] = root / "notes.mp4"
    # a video track in a codec nobody can decode: the sample entry fourcc avc1 -> zzzz
    (root / "zzzz.mp4").write_bytes(whole.replace(b"avc1", b"zzzz"))
    c["zzzz.mp4"] = root / "zzzz.mp4"
    with av.open(str(root / "voice.mp4"), "w") as out:  # audio only: the video stream is missing
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    c["voice.mp4"] = root / "voice.mp4"
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    c["broken.png"] = root / "broken.png"
    pictures = {"good.png": rng.integers(0, 256, (24, 32, 3), np.uint8),
                "deep16.png": rng.integers(0, 65536, (24, 32, 3)).astype(np.uint16),
                "gray.png": rng.integers(0, 256, (24, 32), np.uint8),
                "gray16.png": rng.integers(0, 65536, (24, 32)).astype(np.uint16),
                "alpha.png": rng.integers(0, 256, (24, 32, 4), np.uint8),
                "one.png": np.array([[[10, 200, 30]]], np.uint8),
                "huge.png": np.zeros((10000, 10000), np.uint8)}  # compresses to ~100 kB
    for name, img in pictures.items():
        cv2.imwrite(str(root / name), img)
        c[name] = root / name
    (root / "yaml").mkdir()
    for name, text in {
        "malformed.yaml": "source: {url: [unclosed\n",
        "unknown_key.yaml": f"source: {{url: {c['clip']}}}\nsorce: typo\n",
        "wrong_type.yaml": f"source: {{url: {c['clip']}, timeout_s: soon}}\n",
        "live.yaml": "source: {url: rtsp://127.0.0.1:9/cam, timeout_s: 2}\n",
        "run.yaml": f"source: {{url: {c['clip']}}}\nbackend: {{threads: 1}}\n",
    }.items():
        (root / "yaml" / name).write_text(text)
        c[name] = root / "yaml" / name
    c["missing.safetensors"] = root / "missing.safetensors"
    good = fast_weights.read_bytes()
    (root / "corrupt.safetensors").write_bytes(good[: len(good) // 3])
    c["corrupt.safetensors"] = root / "corrupt.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(fast_weights))
    key = sorted(state)[0]
    state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])  # one filter too many
    save_file(state, str(root / "wide.safetensors"))
    c["wide.safetensors"] = root / "wide.safetensors"
    save_file(load_file(str(fast_weights)), str(root / "meta.safetensors"), {"arch": "{glob: true"})
    c["meta.safetensors"] = root / "meta.safetensors"
    torch.manual_seed(0)
    c["drn.safetensors"] = save_weights(get_spec("drn").build(), root / "drn.safetensors")
    fast = get_spec("fast")  # as `streamer train` writes them: with the model and its options
    c["trained.safetensors"] = save_weights(fast.builder(glob=True), root / "trained.safetensors",
                                            {"arch": {"glob": True}, "model": "fast"})
    (root / "old.pth").write_bytes(b"\x80\x04pickle")
    c["old.pth"] = root / "old.pth"
    c["classifier.onnx"] = _tiny_classifier(root / "classifier.onnx")
    c["future.onnx"] = _tiny_classifier(root / "future.onnx", ir_version=99)
    (root / "trt86").mkdir()
    c["trt86.engine"] = _engine(root / "trt86", "8.6.1", ORIN_SIDECAR)
    (root / "orin").mkdir()
    c["orin.engine"] = _engine(root / "orin", "10.3.0", ORIN_SIDECAR)
    (root / "garbage.ep").write_bytes(bytes(range(256)))
    c["garbage.ep"] = root / "garbage.ep"
    (root / "blocker").write_text("a regular file where a folder should be")
    c["blocker"] = root / "blocker"
    c["blocked.mp4"] = root / "blocker" / "out.mp4"  # root ignores chmod; a file as parent stops anyone
    return c


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[dict[str, Path], Path], list[str]]  # (corpus, output folder) -> arguments
    match: str  # regex the error line must contain


def _restore(name: str) -> Callable[[dict[str, Path], Path], list[str]]:
    """A good picture first (its output must survive), then the bad input."""
    return lambda c, out: ["restore", str(c["good.png"]), str(c.get(name, Path("/nonexistent") / name)),
                           "-o", str(out), "--model", str(c["weights"]), "--threads", "1"]


def _run(config: str = "run.yaml", *extra: str, model: str = "weights",
         sink: str = "earlier.mp4") -> Callable[[dict[str, Path], Path], list[str]]:
    """`streamer run`; by default its sink is an output an earlier run wrote (it must survive).
    ``model``/``sink`` name a corpus entry or, failing that, a file in the output folder."""
    def argv(c: dict[str, Path], out: Path) -> list[str]:
        return ["run", "--config", str(c[config]), "--sink", str(c.get(sink, out / sink)),
                "--model", str(c.get(model, model)), "--arch", "fast", "--no-progress", *extra]
    return argv


TRT = ("--backend", "tensorrt", "--device", "cuda")
CASES = [
    Case("zero-byte video", _restore("empty.mp4"), r"empty\.mp4: file is empty \(0 bytes\)"),
    Case("truncated video", _restore("truncated.mp4"), r"truncated\.mp4: not a readable video"),
    Case("text file named .mp4", _restore("notes.mp4"), r"notes\.mp4: not a readable video"),
    Case("unsupported codec", _restore("zzzz.mp4"), r"zzzz\.mp4: video codec not supported"),
    Case("video stream missing", _restore("voice.mp4"), r"voice\.mp4: has no video stream"),
    Case("input not found", _restore("gone.mp4"), r"gone\.mp4: file not found"),
    Case("broken png", _restore("broken.png"), r"broken\.png: not a readable image"),
    Case("10000x10000 image", _restore("huge.png"),
         r"huge\.png: image is 10000x10000 \(100 MP\), above the 50 MP limit"),
    Case("unwritable restore folder",
         lambda c, out: ["restore", str(c["good.png"]), "-o", str(c["blocker"] / "out"),
                         "--model", str(c["weights"])],
         r"blocker/out: .*blocker is a file, not a folder"),
    Case("rtsp closed port", _run("live.yaml"),
         r"rtsp://127\.0\.0\.1:9/cam: cannot open RTSP camera \(Connection refused\)"),
    Case("unresolvable host", _run("live.yaml", "--source", "rtsp://camera.invalid/stream"),
         r"rtsp://camera\.invalid/stream: cannot open RTSP camera \(cannot resolve host camera\.invalid"),
    Case("malformed yaml", _run("malformed.yaml"), r"malformed\.yaml: line \d+ malformed YAML"),
    Case("unknown config key", _run("unknown_key.yaml"), r"unknown_key\.yaml: sorce: unknown key"),
    Case("wrong type", _run("wrong_type.yaml"),
         r"wrong_type\.yaml: source\.timeout_s: Input should be a valid number"),
    Case("missing source file", _run("run.yaml", "--source", "/nonexistent/cam.mp4"),
         r"/nonexistent/cam\.mp4: file not found"),
    Case("unknown model", _run(model="fsat"), r"unknown model 'fsat'; did you mean 'fast'\?"),
    Case("missing weights", _run(model="missing.safetensors"),
         r"missing\.safetensors \(model fast\): weights file not found"),
    Case("corrupt safetensors", _run(model="corrupt.safetensors"),
         r"corrupt\.safetensors \(model fast\): not a readable safetensors file"),
    Case("weights of the wrong shape", _run(model="wide.safetensors"),
         r"wide\.safetensors \(model fast\): \S+ has shape \(33,\), the model needs \(32,\); "
         r"these weights are for another configuration"),
    Case("weights of another model", _run(model="drn.safetensors"),
         r"drn\.safetensors \(model fast\): weights are for another architecture"),
    Case("trained weights of another model",  # was a TypeError traceback from DRN's constructor
         lambda c, out: ["run", "--config", str(c["run.yaml"]), "--sink", "null", "--no-progress",
                         "--model", str(c["trained.safetensors"]), "--arch", "drn"],
         r"trained\.safetensors \(model drn\): weights are for another architecture: they were trained "
         r"with option glob, which drn does not have; they are fast's \(--arch fast\)"),
    Case("damaged weights metadata", _run(model="meta.safetensors"),  # was a JSONDecodeError traceback
         r"meta\.safetensors: damaged metadata 'arch' \(Expecting property name"),
    Case("pickled weights", _run(model="old.pth"),
         r"old\.pth: pickled weights are not loaded for safety; convert them once "
         r".*convert_pickle\('.*old\.pth', '.*old\.safetensors'\)"),
    Case("onnx of another model", _run("run.yaml", "--backend", "onnxruntime", model="classifier.onnx"),
         r"classifier\.onnx: output scores has shape \['n', 8\].*not a streamer restoration model"),
    Case("onnx newer than this onnxruntime", _run("run.yaml", "--backend", "onnxruntime", model="future.onnx"),
         r"future\.onnx: onnxruntime cannot load it \(Unsupported model IR version: 99, max supported IR "
         r"version: \d+\); re-export the model$"),
    Case("engine from another TensorRT", _run("run.yaml", *TRT, model="trt86.engine"),
         r"fast\.engine: built by TensorRT 8\.6\.1, this is 10\.3\.0; rebuild it on this device"),
    Case("engine from another GPU", _run("run.yaml", *TRT, model="orin.engine"),
         r"fast\.engine: built for GPU Orin \(sm_87\), this is NVIDIA H100 \(sm_90\); rebuild it on this device"),
    Case("torch-tensorrt program on onnxruntime", _run("run.yaml", "--backend", "onnxruntime", model="garbage.ep"),
         r"garbage\.ep: a TensorRT engine needs --backend tensorrt"),  # was "unknown model 'garbage.ep'"
    Case("torch-tensorrt program not found", _run("run.yaml", *TRT, model="/nonexistent/fast.ep"),
         r"/nonexistent/fast\.ep: engine not found; build it on the device with `streamer export --format torchtrt`"),
    Case("unwritable output folder", _run(sink="blocked.mp4"), r"blocker/out\.mp4: .*blocker is a file, not a folder"),
    Case("unsupported output suffix", _run(sink="clean.avi"),
         r"clean\.avi: unknown video suffix '\.avi'; use \.mp4 or \.mkv"),
    Case("output without a suffix", _run(sink="viewer"),
         r"sink '.*viewer': a sink is a \.mp4/\.mkv path, rtsp://…, rtsp-serve://…, view or null"),
    Case("export into a file's place",
         lambda c, out: ["export", "--model", "fast", "--weights", str(c["weights"]),
                         "-o", str(c["blocker"] / "fast.onnx")],
         r"-o .*blocker/fast\.onnx: .*blocker is a file, not a folder"),
    Case("missing calibration folder",
         lambda c, out: ["export", "--model", "fast", "--weights", str(c["weights"]), "--precision", "int8",
                         "--calib", "/nope", "-o", str(out / "fast-int8.onnx")],
         r"--calib /nope: not found; make one with `streamer calib make"),
]


@pytest.fixture
def this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend TensorRT 10.3 on an H100 is here, so the sidecar check (not the missing extra) speaks."""
    from streamer.export import sidecar

    monkeypatch.setattr(sidecar, "current_tensorrt_version", lambda: "10.3.0")
    monkeypatch.setattr(sidecar, "current_gpu", lambda device=0: sidecar.GpuInfo("NVIDIA H100", "9.0"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_1(case: Case, corpus: dict[str, Path], tmp_path: Path,
                                          this_machine: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "earlier.mp4"
    shutil.copy(corpus["clip"], earlier)
    before = earlier.read_bytes()
    code = main(case.argv(corpus, out))
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith("streamer: error: "), captured.err
    assert re.search(case.match, errors[0]), errors[0]
    assert "Traceback" not in captured.err + captured.out
    assert earlier.read_bytes() == before  # an earlier output is never clobbered by a failed start
    if (out / "good.png").exists():  # restore: the good input before the bad one was finished
        assert cv2.imread(str(out / "good.png")).shape == (24, 32, 3)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize("name, shape, dtype", [
    ("deep16.png", (24, 32, 3), np.uint8),  # 16-bit: scaled to 8-bit, the network's precision
    ("gray.png", (24, 32), np.uint8),  # grayscale in, grayscale out (run as RGB replicated)
    ("gray16.png", (24, 32), np.uint8),
    ("alpha.png", (24, 32, 4), np.uint8),  # colour cleaned, alpha copied through
    ("one.png", (1, 1, 3), np.uint8),
])
def test_unusual_pictures_are_restored(name: str, shape: tuple[int, ...], dtype: type, corpus: dict[str, Path],
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["restore", str(corpus[name]), "-o", str(tmp_path), "--model", str(corpus["weights"]),
                 "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    img = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
    assert img.shape == shape and img.dtype == dtype
    if name == "alpha.png":
        assert np.array_equal(img[..., 3], cv2.imread(str(corpus[name]), cv2.IMREAD_UNCHANGED)[..., 3])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_real_process_prints_one_line_and_no_traceback(corpus: dict[str, Path], tmp_path: Path) -> None:
    done = _cli("-q", "run", "--config", str(corpus["live.yaml"]), "--sink", "null", "--model",
                str(corpus["missing.safetensors"]), "--arch", "fast")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"streamer: error: {corpus['missing.safetensors']} (model fast): weights file not found"]


def test_debug_shows_the_traceback(corpus: dict[str, Path]) -> None:
    quiet = _cli("run", "--config", str(corpus["malformed.yaml"]))
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert quiet.stderr.startswith("streamer: error: ") and quiet.stderr.count("\n") == 1
    debug = _cli("--debug", "run", "--config", str(corpus["malformed.yaml"]))
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_unwritable_int8_cache_names_streamer_cache(corpus: dict[str, Path], monkeypatch) -> None:
    """A read-only root filesystem (common on dashcams): the on-the-fly INT8 file has nowhere to go."""
    from streamer import Cleaner
    from streamer.errors import ConfigError

    monkeypatch.setenv("STREAMER_CACHE", str(corpus["blocker"] / "cache"))
    with pytest.raises(ConfigError, match=r"INT8 cache .*blocker/cache/int8: .*; set STREAMER_CACHE to a writable"):
        Cleaner(str(corpus["weights"]), "onnxruntime", int8=True, arch="fast")
