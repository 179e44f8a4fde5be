"""OpenVINO inference on the CPU: the fastest CPU runtime we measured for FastNet.

It runs the same ONNX files as ONNX Runtime, fp32 or the INT8 QDQ file `streamer export
--precision int8` writes (calibrated on calib/, so both runtimes share one calibration). On the
2-core AVX-512 VNNI box, 1280×720 INT8: OpenVINO 29 ms, ONNX Runtime 43 ms (docs/model-log.md).

Each input shape is compiled once (static shapes let OpenVINO pick its fastest kernels; a camera
has one frame size) and cached. ``start_uint8``/``wait_uint8`` take the frames as they come
(N×H×W×3 uint8) and let OpenVINO fuse the uint8 → float, HWC → CHW conversions (and back,
rounded) into the network: at 720p that saves the ~9 ms per frame the numpy/OpenCV conversions
cost on 2 cores.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import numpy as np

from streamer.backends.base import fixed_size_error
from streamer.errors import EngineError, install_extra

log = logging.getLogger(__name__)
OV_MISSING = f"OpenVINO backend needs the openvino extra: {install_extra('openvino')}"
TELEMETRY_ENV = "STREAMER_OPENVINO_TELEMETRY"
_NOT_OURS = "this ONNX file is not a streamer restoration model; export one with `streamer export`"


def _onnx_proto(model: bytes | str | Path, label: str):
    """The ONNX graph, read by onnx first: OpenVINO given a broken file tries its other frontends
    and prints their (TensorFlow, absl) complaints before its own one-line reason."""
    import onnx

    try:
        return (onnx.load_from_string(model) if isinstance(model, bytes)
                else onnx.load(str(model), load_external_data=False))
    except Exception as exc:  # DecodeError, OSError, ValueError: all mean "not this file"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EngineError(f"{label}: not a readable ONNX file ({reason}); re-export the model") from exc


def _onnx_multiple(proto) -> int | None:
    """The ``multiple`` our exporter writes into the ONNX metadata, if any."""
    meta = {p.key: p.value for p in proto.metadata_props}
    return int(meta["multiple"]) if meta.get("multiple", "").isdigit() else None


def import_openvino():
    """``import openvino`` without its usage telemetry (unless ``$STREAMER_OPENVINO_TELEMETRY=1``).

    ``import openvino`` sends an event to Google Analytics (opt-out, `openvino-telemetry`) and
    writes ``~/intel/``: a camera box must not call out or write to $HOME because a library was
    imported. While OpenVINO imports, its telemetry package reads as absent, so it falls back to
    its own no-op stub; afterwards the package is importable again. Once a host application has
    imported openvino itself, its choice stands.
    """
    if "openvino" in sys.modules or os.environ.get(TELEMETRY_ENV) == "1":
        import openvino
        return openvino
    blocked = "openvino_telemetry" not in sys.modules
    if blocked:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import openvino
    finally:
        if blocked and sys.modules.get("openvino_telemetry", 0) is None:
            del sys.modules["openvino_telemetry"]
    return openvino


def _uint8_io(model):
    """Wrap an N×3×H×W float [0,1] model as N×H×W×3 uint8 in and out (rounded, saturated).

    When the model ends in DepthToSpace (FastNet), the rounding to uint8 moves in front of it, so
    the rearrangement moves bytes instead of floats and fuses with the blend: ~1.5 ms at 720p.
    """
    ov = import_openvino()
    import openvino.opset13 as ops
    from openvino.preprocess import PrePostProcessor

    def to_u8(node):
        scaled = ops.add(ops.multiply(node, np.float32(255.0)), np.float32(0.5))
        return ops.convert(ops.clamp(scaled, 0.0, 255.0), "u8")  # convert truncates: +0.5 rounds

    last = model.get_results()[0].input_value(0).get_node()
    if last.get_type_name() == "DepthToSpace":
        attrs = last.get_attributes()
        out = ops.depth_to_space(to_u8(last.input_value(0)), attrs["mode"], attrs["block_size"])
        model = ov.Model([out], model.get_parameters(), model.get_friendly_name())
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    post = ppp.output()
    post.model().set_layout(ov.Layout("NCHW"))
    if last.get_type_name() != "DepthToSpace":
        post.postprocess().custom(lambda node: to_u8(node).output(0))
    post.postprocess().convert_layout(ov.Layout("NHWC"))
    return ppp.build()


class _Compiled:
    """One compiled shape and its infer requests, used round-robin (``inflight`` of them)."""

    def __init__(self, compiled, n: int) -> None:
        self.requests = [compiled.create_infer_request() for _ in range(n)]
        self.next = 0

    def take(self):
        req = self.requests[self.next]
        self.next = (self.next + 1) % len(self.requests)
        return req


@functools.cache
def shared_core():
    """The process's one ``ov.Core`` (OpenVINO recommends one per application). Each Core's CPU
    plugin swaps the main thread's signal stack (sigaltstack, for AMX) and restores the one it
    found when released; Cores released in creation order left it pointing at freed memory, and
    the next Python signal handler (Ctrl-C, SIGTERM, a child process exiting) crashed the
    process with SIGSEGV (found in session 18: two backends opened and closed, then Ctrl-C)."""
    return import_openvino().Core()


class OpenVinoBackend:
    """``inflight`` > 1: up to that many frames in flight on the uint8 path, each on its own CPU
    stream (`FrameRestorer.submit`/`finish`, used by the pipeline). On 2 cores, 2 streams gave
    1.34× the frames per second of one 2-thread stream (47.5 vs 35.4 fps at 720p, network only),
    at the cost of ~1 frame more latency."""

    name = "openvino"

    def __init__(self, model: bytes | str | Path, *, threads: int = 0, multiple: int = 1,
                 label: str = "", inflight: int = 1) -> None:
        try:
            self.core = shared_core()
        except ModuleNotFoundError as exc:
            raise EngineError(OV_MISSING) from exc
        self.label = label or (str(model) if not isinstance(model, bytes) else "model")
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise EngineError(f"{model}: ONNX file not found; export it with `streamer export`")
        proto = _onnx_proto(model, self.label)
        try:
            self.model = self.core.read_model(model if isinstance(model, bytes) else str(model))
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line reports
            raise EngineError(f"{self.label}: OpenVINO cannot read it "
                              f"({str(exc).strip().splitlines()[0][:200]}); re-export the model") from exc
        inputs, outputs = self.model.inputs, self.model.outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"{self.label}: has {len(inputs)} inputs and {len(outputs)} outputs, "
                              f"expected one picture in and one out; {_NOT_OURS}")
        shape = inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4 or not shape[1].is_static or shape[1].get_length() != 3:
            raise EngineError(f"{self.label}: input has shape {shape}, expected N×3×H×W; {_NOT_OURS}")
        self.input_hw = (tuple(d.get_length() for d in (shape[2], shape[3]))
                         if shape[2].is_static and shape[3].is_static else None)
        self.max_batch = shape[0].get_length() if shape[0].is_static else 0  # export --size: 1
        self.multiple = _onnx_multiple(proto) or multiple
        self.uint8_io = True  # FrameRestorer hands it uint8 frames (unless it tiles)
        self.inflight = max(1, int(inflight))
        # decode and encode threads share the cores: do not pin ours. f32: on CPUs with bf16
        # (AVX512_BF16, AMX) OpenVINO would otherwise run the float parts in bfloat16 — fast-drops'
        # fill lost 0.21 dB that way, unseen on the VNNI-only Xeon; INT8 speed is the same
        self.config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False,
                       "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self._compiled: dict[tuple[int, ...], _Compiled] = {}

    def _request(self, shape: tuple[int, ...], uint8: bool = False):
        key = (*shape, uint8)
        entry = self._compiled.get(key)
        if entry is None:
            if len(self._compiled) >= 4:  # tiles, odd frames: keep the cache small
                self._compiled.clear()
            model = self.model.clone()
            if not self.model.inputs[0].get_partial_shape().is_static:
                model.reshape({0: list(shape)})
            n = self.inflight if uint8 else 1
            config = self.config
            if uint8:
                model = _uint8_io(model)
                if n > 1:
                    config = config | {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": n}
            try:
                compiled = self.core.compile_model(model, "CPU", config)
            except Exception as exc:
                raise EngineError(f"{self.label}: OpenVINO cannot compile it for input {shape} "
                                  f"({str(exc).strip().splitlines()[0][:200]})") from exc
            out_shape = tuple(compiled.outputs[0].get_shape())
            want = (shape[0], shape[2], shape[3], shape[1]) if uint8 else shape
            if out_shape != want:
                raise EngineError(f"{self.label}: output shape {out_shape} for input {shape}, "
                                  f"expected the same N×3×H×W; {_NOT_OURS}")
            entry = self._compiled[key] = _Compiled(compiled, n)
            log.debug("%s: OpenVINO compiled for %s (%d in flight)", self.label, shape, n)
        return entry.take()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        self._check_hw(x.shape[2], x.shape[3])
        req = self._request(tuple(x.shape))
        req.infer({0: x})
        return req.get_output_tensor(0).data.copy()

    def _check_hw(self, h: int, w: int) -> None:
        if self.input_hw and (h, w) != self.input_hw:
            raise EngineError(fixed_size_error(self.label, self.input_hw, (h, w)))

    def start_uint8(self, images: np.ndarray):
        """Start N×H×W×3 uint8 RGB frames; returns a handle for ``wait_uint8``. Handles must be
        waited for in the order they were started, at most ``inflight`` outstanding."""
        n, h, w, _ = images.shape
        self._check_hw(h, w)
        req = self._request((n, 3, h, w), uint8=True)
        req.start_async({0: np.ascontiguousarray(images)})
        return req

    def wait_uint8(self, handle) -> np.ndarray:
        """The restored frames (same shape, uint8, rounded and saturated)."""
        handle.wait()
        return handle.get_output_tensor(0).data.copy()

    def close(self) -> None:
        self._compiled.clear()

    def __enter__(self) -> "OpenVinoBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
