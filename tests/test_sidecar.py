"""Engines built elsewhere are refused with one line naming both sides, checked from the sidecar."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from streamer.errors import EngineError
from streamer.export.sidecar import (
    GpuInfo,
    Sidecar,
    check_engine_compatible,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

ORIN = GpuInfo("Orin", "8.7")
H100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")


def crafted(tmp_path: Path, trt: str | None = "8.6.1", gpu: GpuInfo | None = ORIN, fmt: str = "engine") -> Path:
    engine = tmp_path / "engines" / "fast.engine"
    engine.parent.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(b"not a real engine")
    side = Sidecar(model="fast", format=fmt, precision="fp16", file=engine.name, tensorrt_version=trt,
                   gpu={"name": gpu.name, "capability": gpu.capability} if gpu else None,
                   shapes={"profile": {"min": [1, 3, 360, 640], "opt": [1, 3, 720, 1280], "max": [1, 3, 1088, 1920]}})
    write_sidecar(engine, side)
    return engine


def test_other_tensorrt_version(tmp_path: Path) -> None:
    engine = crafted(tmp_path, trt="8.6.1")
    with pytest.raises(EngineError, match=r"fast\.engine: built by TensorRT 8\.6\.1, this is 10\.3\.0; rebuild it on this device"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)


def test_other_gpu_architecture(tmp_path: Path) -> None:
    engine = crafted(tmp_path, trt="10.3.0", gpu=ORIN)
    with pytest.raises(EngineError, match=r"built for GPU Orin \(sm_87\), this is NVIDIA H100 80GB HBM3 \(sm_90\); rebuild it on this device"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=H100)


def test_another_patch_release_is_refused_and_another_gpu_of_the_arch_warns(tmp_path: Path, caplog) -> None:
    """TensorRT refuses engines of another patch release ("expecting library version 8.5.1.7 got
    8.5.3.1"): said here in one line, not as "could not deserialize". Orin NX runs an Orin Nano's engine."""
    engine = crafted(tmp_path, trt="10.3.0.26", gpu=ORIN)
    with pytest.raises(EngineError, match=r"built by TensorRT 10\.3\.0\.26, this is 10\.3\.0\.30; rebuild"):
        check_engine_compatible(engine, tensorrt_version="10.3.0.30", gpu=ORIN)
    side = check_engine_compatible(engine, tensorrt_version="10.3.0.26", gpu=GpuInfo("Orin NX", "8.7"))
    assert side.model == "fast" and side.shapes["profile"]["opt"] == [1, 3, 720, 1280]
    assert "built on Orin, running on Orin NX (same architecture)" in caplog.text


def test_missing_or_broken_sidecar(tmp_path: Path) -> None:
    engine = crafted(tmp_path)
    sidecar_path(engine).unlink()
    with pytest.raises(EngineError, match=r"no sidecar fast\.engine\.json .* rebuild it with `streamer export`"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(EngineError, match="unreadable sidecar"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)
    sidecar_path(engine).write_bytes(b"\x93\xfd binary")  # was a UnicodeDecodeError traceback
    with pytest.raises(EngineError, match="unreadable sidecar .*rebuild the engine"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)


def test_unknown_build_version_and_wrong_model(tmp_path: Path) -> None:
    engine = crafted(tmp_path, trt=None)
    with pytest.raises(EngineError, match="built by TensorRT unknown, this is 10.3.0"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)
    engine = crafted(tmp_path, trt="10.3.0")
    with pytest.raises(EngineError, match="built for model fast, not drn"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN, model="drn")


def test_onnx_sidecar_is_not_an_engine(tmp_path: Path) -> None:
    engine = crafted(tmp_path, fmt="onnx")
    with pytest.raises(EngineError, match="not a TensorRT engine; use the onnxruntime backend"):
        check_engine_compatible(engine, tensorrt_version="10.3.0", gpu=ORIN)


def test_roundtrip_keeps_fields_and_stamps(tmp_path: Path) -> None:
    engine = crafted(tmp_path)
    data = json.loads(sidecar_path(engine).read_text())
    assert data["created"] and data["streamer_version"] and data["gpu"] == {"name": "Orin", "capability": "8.7"}
    data["added_by_a_newer_streamer"] = 1  # unknown keys are ignored, not fatal
    sidecar_path(engine).write_text(json.dumps(data))
    assert read_sidecar(engine).tensorrt_version == "8.6.1"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_backend_without_tensorrt_says_install(tmp_path: Path) -> None:
    from streamer.backends.trt_backend import open_trt_backend

    engine = crafted(tmp_path, trt="10.3.0")
    with pytest.raises(EngineError, match=r"TensorRT backend needs the tensorrt extra: pip install -e '\.\[tensorrt\]' in the streamer folder \(on a Jetson"):
        open_trt_backend(str(engine))
    with pytest.raises(EngineError, match=r"runs a built engine \(\.engine or \.ep\)"):
        open_trt_backend(str(tmp_path / "fast.onnx"))


@pytest.mark.parametrize("damage, where", [
    (lambda d: d["gpu"].pop("capability"), r"gpu\.capability: Field required"),
    (lambda d: d.update(tensorrt_version=10.3), r"tensorrt_version: Input should be a valid string"),
    (lambda d: d.update(shapes=[1, 3, 720, 1280]), r"shapes: Input should be a valid dictionary"),
    (lambda d: d.pop("model"), r"model: Field required"),
])
def test_damaged_sidecar_is_one_line_naming_the_file(tmp_path: Path, damage, where) -> None:
    engine = crafted(tmp_path)
    data = json.loads(sidecar_path(engine).read_text())
    damage(data)
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(EngineError, match=rf"fast\.engine\.json: damaged sidecar, {where}; rebuild the engine"):
        check_engine_compatible(engine, tensorrt_version="8.6.1", gpu=ORIN)
    sidecar_path(engine).write_text("[]")
    with pytest.raises(EngineError, match="damaged sidecar, the whole file: Input should be a valid dictionary"):
        read_sidecar(engine)
