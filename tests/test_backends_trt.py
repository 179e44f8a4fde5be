"""The TensorRT backends' own checks, on CPU: TensorRT and the GPU are stand-ins that answer the
way TensorRT 10 does when it fails (None, False). The real runs are in test_tensorrt.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from streamer.backends import trt_backend
from streamer.backends.trt_backend import TensorRTBackend, TorchTrtBackend
from streamer.errors import EngineError


class _Logger:
    WARNING = 2

    def __init__(self, level: int) -> None:
        pass


def _fake_trt(engine: object) -> SimpleNamespace:
    """``tensorrt`` as far as TensorRTBackend gets before its first check."""
    return SimpleNamespace(__version__="10.3.0", Logger=_Logger,
                           Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: engine))


@pytest.fixture
def engine_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An engine file whose sidecar passes and a CUDA device that can be selected."""
    path = tmp_path / "fast.engine"
    path.write_bytes(b"not really an engine")
    monkeypatch.setattr(trt_backend, "check_engine_compatible",
                        lambda *a, **k: SimpleNamespace(multiple=16, model="fast", precision="fp16"))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    return path


@pytest.mark.parametrize("engine, match", [
    (None, r"TensorRT 10\.3\.0 could not deserialize it, most likely built by another TensorRT version "
           r"or for another GPU; rebuild it on this device"),
    (SimpleNamespace(create_execution_context=lambda: None),  # out of memory on an 8 GB Orin
     r"could not create an execution context \(out of GPU memory\?\)"),
])
def test_engine_failures_are_one_line(engine: object, match: str, engine_file: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_backend, "_import_trt", lambda: _fake_trt(engine))
    with pytest.raises(EngineError, match=match):
        TensorRTBackend(engine_file, device="cuda:0")


def test_refused_input_shape_is_an_error() -> None:
    """``set_input_shape`` returns False for a shape it will not take; running on would read an
    unset shape."""
    backend = object.__new__(TensorRTBackend)  # only what _run_device reads before the GPU
    backend.path = Path("fast.engine")
    backend.min_shape, backend.max_shape = (1, 3, 16, 16), (2, 3, 64, 64)
    backend.input_name = "input"
    backend.context = SimpleNamespace(set_input_shape=lambda name, shape: False)
    with pytest.raises(EngineError, match="fast.engine: TensorRT refused input shape 1x3x32x48"):
        backend._run_device(torch.zeros(1, 3, 32, 48))


def test_torchtrt_backend_checks_the_gpu_it_runs_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device cuda:1`` must be checked against cuda:1's architecture, not cuda:0's."""
    seen: dict = {}

    def check(path, **kwargs):
        seen.update(kwargs)
        raise EngineError("checked")

    monkeypatch.setattr(trt_backend, "_import_trt", lambda: None)
    monkeypatch.setattr(trt_backend, "check_engine_compatible", check)
    with pytest.raises(EngineError, match="checked"):
        TorchTrtBackend(tmp_path / "fast.ep", device="cuda:1", model="fast")
    assert seen == {"model": "fast", "device": 1}
