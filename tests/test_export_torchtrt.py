"""The torch-only half of ``--format torchtrt``, on CPU: the exported program that
Torch-TensorRT compiles must take every shape of the profile (TensorRT itself: test_tensorrt.py)."""

from __future__ import annotations

import sys
from functools import cache

import numpy as np
import pytest
import torch

from streamer.errors import EngineError, ExportError
from streamer.export.onnx_export import probe_inputs
from streamer.export.torchtrt import export_program
from streamer.models import get_spec, list_specs
from streamer.models.weights import build_with_weights

# min, opt, max (N, H, W): dynamic batch, non-square, multiples of 16 (FastNet) and of 4 (DRN)
PROFILE = ((1, 64, 64), (1, 96, 160), (2, 128, 192))


@cache
def _shipped(name: str):
    """(the shipped model as exported, its program for PROFILE); exported once per run."""
    spec = get_spec(name)
    net = build_with_weights(spec, spec.weights_path).eval()
    return net, export_program(net, PROFILE, spec.multiple)


def _run(program, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return program.module()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", [s.name for s in list_specs()])  # every model exports to .ep
def test_program_takes_min_opt_and_max_like_eager(name: str) -> None:
    net, program = _shipped(name)
    for x in probe_inputs(list(PROFILE)):
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        got = _run(program, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_program_refuses_shapes_outside_the_profile() -> None:
    """The ranges are real: a batch above max, or a height off FastNet's multiple, is refused."""
    _, program = _shipped("fast")
    for n, h, w in ((3, 64, 64), (1, 72, 64)):
        with pytest.raises((RuntimeError, AssertionError)):  # torch's shape guards
            _run(program, probe_inputs([(n, h, w)])[0])


def test_fixed_profile_exports_static() -> None:
    spec = get_spec("fast")
    size = (1, 48, 80)
    program = export_program(spec.build().eval(), (size, size, size), spec.multiple)
    assert _run(program, probe_inputs([size])[0]).shape == (1, 3, 48, 80)


@pytest.mark.parametrize("profile, match", [
    (((1, 64, 64), (1, 96, 160), (2, 120, 192)), "height must be a multiple of 16"),
    (((2, 64, 64), (1, 96, 160), (2, 128, 192)), "batch must grow"),
])
def test_bad_profile_is_one_line(profile, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        export_program(get_spec("fast").build().eval(), profile, 16)


@pytest.mark.parametrize("calib, match", [(object(), "needs NVIDIA ModelOpt: pip install nvidia-modelopt"),
                                          (None, "int8 needs calibration frames")])
def test_int8_prerequisites_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path, calib, match: str) -> None:
    """INT8's own needs are checked before torch-tensorrt or any work: ModelOpt missing was a raw
    ModuleNotFoundError (its import sat outside the friendly handler)."""
    from streamer.export.torchtrt import compile_torchtrt

    for mod in ("modelopt", "modelopt.torch", "modelopt.torch.quantization", "modelopt.torch.quantization.utils"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ModuleNotFoundError
    with pytest.raises(ExportError, match=match):
        compile_torchtrt(get_spec("fast").build(), tmp_path / "fast-int8.ep", precision="int8",
                         profile=PROFILE, multiple=16, calib=calib)


@pytest.mark.parametrize("version", ["2.6.0", "2.9.0", "2.10.0", "2.12.1+cu130"])
@pytest.mark.parametrize("precision, dtypes", [("fp32", {torch.float32}),
                                               ("fp16", {torch.float16, torch.float32}),
                                               ("int8", {torch.int8, torch.float16, torch.float32})])
def test_precision_settings(version: str, precision: str, dtypes: set) -> None:
    """2.10-2.12 default to explicit typing and assert on enabled_precisions unless weak typing is
    asked for by name; earlier ones take the same keyword (default False there)."""
    from streamer.export.torchtrt import precision_settings

    got = precision_settings(precision, version)
    assert got["enabled_precisions"] == dtypes and got["use_explicit_typing"] is False
    assert got["disable_tf32"] is (precision == "fp32")


@pytest.mark.parametrize("version", ["2.4.0", "2.5.0", "2.13.0", "2.14.0"])
def test_precision_settings_refuse_other_releases(version: str) -> None:
    """2.4/2.5 cannot save a dynamic program without example inputs; 2.13+ need TensorRT 11 and
    drop enabled_precisions (fp16 would silently build as fp32)."""
    from streamer.export.torchtrt import precision_settings

    with pytest.raises(ExportError, match=f"torch-tensorrt {version} is not supported.*2.6 up to 2.12"):
        precision_settings("fp16", version)


class _ProgramBackend:
    """The tensorrt backend's interface over a torch.export program: a CPU stand-in for an .ep."""

    def __init__(self, program) -> None:
        self.module, self.shapes = program.module(), []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        with torch.no_grad():
            return self.module(torch.from_numpy(batch)).numpy()

    def __enter__(self) -> "_ProgramBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("dynamic", [True, False])
def test_export_parity_probes_min_opt_and_max(dynamic: bool, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export-time check runs the built file at each corner of its profile: a program fixed
    at the opt shape (what torch_tensorrt.save's retrace re-export wrote) fails it and is removed."""
    from streamer.backends import trt_backend
    from streamer.export import ExportRequest, _backend_parity
    from streamer.export.sidecar import Sidecar, sidecar_path

    net = get_spec("fast").build().eval()
    program = export_program(net, PROFILE, 16) if dynamic else \
        torch.export.export(net, (torch.rand(1, 3, 96, 160),), strict=False)
    backend = _ProgramBackend(program)
    monkeypatch.setattr(trt_backend, "open_trt_backend", lambda *a, **k: backend)
    out = tmp_path / "fast-fp32.ep"
    out.write_bytes(b"program")
    req = ExportRequest(model="fast", format="torchtrt", precision="fp32", output=out, dynamic=PROFILE)
    side = Sidecar(model="fast", format="torchtrt", precision="fp32", file=out.name, multiple=16)
    if dynamic:
        parity = _backend_parity(req, net, PROFILE, side)
        assert backend.shapes == [(1, 3, 64, 64), (1, 3, 96, 160), (2, 3, 128, 192)]
        assert parity["shapes"] == [[1, 3, 64, 64], [1, 3, 96, 160], [2, 3, 128, 192]]
        assert parity["max_abs"] < 1e-5
    else:
        with pytest.raises(ExportError, match="fast-fp32.ep: the built file fails on a 1x3x64x64 batch, "
                                              "inside its own profile"):
            _backend_parity(req, net, PROFILE, side)
        assert not out.exists() and not sidecar_path(out).exists()


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   EngineError("fast-fp32.ep: no execution context (out of memory on this GPU)")])
def test_out_of_memory_at_the_max_shape_keeps_the_file_and_says_so(
        error: Exception, tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Any RuntimeError at a corner of the profile removed the file as failing "inside its own
    profile", a CUDA out-of-memory too (another process on the GPU): that says nothing about the
    file; it is kept and the corner noted as unchecked. Out of memory at the smallest corner is an
    error that says the file was kept."""
    from streamer.backends import trt_backend
    from streamer.export import ExportRequest, _backend_parity
    from streamer.export.sidecar import Sidecar, sidecar_path

    net = get_spec("fast").build().eval()

    class OutOfMemoryAt(_ProgramBackend):
        def __init__(self, program, batch: int) -> None:
            super().__init__(program)
            self.batch = batch

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            if batch.shape[0] >= self.batch:
                raise error
            return super().__call__(batch)

    program = export_program(net, PROFILE, 16)
    monkeypatch.setattr(trt_backend, "open_trt_backend", lambda *a, **k: OutOfMemoryAt(program, 2))
    out = tmp_path / "fast-fp32.ep"
    out.write_bytes(b"program")
    req = ExportRequest(model="fast", format="torchtrt", precision="fp32", output=out, dynamic=PROFILE)
    side = Sidecar(model="fast", format="torchtrt", precision="fp32", file=out.name, multiple=16)
    parity = _backend_parity(req, net, PROFILE, side)
    assert out.exists() and sidecar_path(out).exists()
    assert parity["shapes"] == [[1, 3, 64, 64], [1, 3, 96, 160]] and parity["max_abs"] < 1e-5
    assert parity["not_checked"]["shape"] == [2, 3, 128, 192]
    assert "could not run on a 2x3x128x192 batch for lack of GPU memory" in caplog.text
    monkeypatch.setattr(trt_backend, "open_trt_backend", lambda *a, **k: OutOfMemoryAt(program, 1))
    with pytest.raises(ExportError, match=r"could not check the built file on a 1x3x64x64 batch for lack of "
                                          r"GPU memory .*; kept, unchecked"):
        _backend_parity(req, net, PROFILE, side)
    assert out.exists()
