"""TensorRT backend: a serialized engine (or Torch-TensorRT program) behind the Backend protocol.

N×3×H×W float32 [0, 1] in and out, like every backend; the pipeline hands an ``.engine`` uint8
frames instead and the conversion runs on the GPU (``gpu_frames``). The engine is checked against its sidecar
first (TensorRT version, GPU architecture), so a foreign engine gives one clear line instead of a
deserialization crash. Device memory is torch CUDA tensors (no pycuda); inference is
``execute_async_v3`` on a torch CUDA stream.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from streamer.backends import TRT_MISSING
from streamer.errors import EngineError
from streamer.export.sidecar import GpuInfo, check_engine_compatible

log = logging.getLogger(__name__)


def _import_trt() -> Any:
    try:
        import tensorrt as trt  # optional extra, imported on use
    except ImportError as exc:
        raise EngineError(TRT_MISSING) from exc
    return trt


def _model_multiple(model: str) -> int:
    """The registered model's padding multiple (FastNet 16), 1 for a name this version lacks."""
    from streamer.errors import ConfigError
    from streamer.models import get_spec

    try:
        return get_spec(model).multiple
    except ConfigError:
        return 1


def _cuda_index(device: str | int) -> int:
    if isinstance(device, int):
        return device
    if device in ("cuda", "gpu"):
        return 0
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    raise EngineError(f"--device {device}: the tensorrt backend runs on a GPU; use --device cuda or cuda:N")


class TensorRTBackend:
    """Runs a ``.engine`` file; one execution context, one stream, buffers reused across calls."""

    name = "tensorrt"

    def __init__(self, path: str | Path, *, device: str | int = "cuda", model: str | None = None,
                 gpu: GpuInfo | None = None, inflight: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EngineError(f"{path}: engine not found; build it on this device with "
                              "`streamer export --format engine`")
        index = _cuda_index(device)
        # version and GPU first: a foreign engine must fail here, not inside deserialization
        self.sidecar = check_engine_compatible(self.path, model=model, gpu=gpu, device=index)
        trt = _import_trt()
        import torch

        from streamer.backends.gpu_frames import GpuFrames

        self.device = torch.device("cuda", index)
        torch.cuda.set_device(self.device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EngineError(f"{path}: TensorRT {trt.__version__} could not deserialize it, most likely "
                              "built by another TensorRT version or for another GPU; rebuild it on this "
                              "device with `streamer export --format engine`")
        self.context = self.engine.create_execution_context()
        if self.context is None:  # TensorRT logs why; on an 8 GB Orin it is GPU memory
            raise EngineError(f"{path}: TensorRT could not create an execution context (out of GPU "
                              "memory?); close other GPU programs, or rebuild with a smaller --dynamic "
                              "max or --workspace")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"{path}: expected one input and one output, found {inputs} -> {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        for n in names:
            if self.engine.get_tensor_dtype(n) != trt.DataType.FLOAT:
                raise EngineError(f"{path}: tensor {n} is {self.engine.get_tensor_dtype(n)}, expected "
                                  "float32 I/O; rebuild with `streamer export --format engine`")
        lo, _, hi = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.min_shape, self.max_shape = tuple(lo), tuple(hi)
        self.max_batch = self.max_shape[0]  # the restorers split larger batches
        # FrameRestorer pads frames to this, as the ONNX backends read it from the file's
        # metadata: a 1080p frame reaches an engine built for 1920x1088 (docs/jetson.md) as 1088
        self.multiple = self.sidecar.multiple or _model_multiple(self.sidecar.model)
        self.stream = torch.cuda.Stream(self.device)
        self._out: torch.Tensor | None = None
        self.uint8_io = True  # FrameRestorer hands it uint8 frames (unless it tiles)
        self.inflight = max(1, int(inflight))
        self._frames = GpuFrames(self._run_device, self.device, inflight=self.inflight, stream=self.stream)
        log.info("%s: TensorRT %s engine, shapes %s..%s", path, self.sidecar.precision,
                 self.min_shape, self.max_shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.cuda.stream(self.stream):
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, non_blocking=True)
            result = self._run_device(x).to("cpu", non_blocking=False)
        self.stream.synchronize()
        return result.numpy()

    def start_uint8(self, images: np.ndarray):
        """The pipeline's uint8 path (``gpu_frames``): conversion on the GPU, not the CPU."""
        return self._frames.start(images)

    def wait_uint8(self, handle) -> np.ndarray:
        return self._frames.finish(handle)

    def _run_device(self, x):
        """N×3×H×W float32 on the device, in ``self.stream`` -> the engine's output tensor (reused
        by the next call: read it, in stream order, before then)."""
        import torch

        x = x.contiguous()  # the engine reads NCHW from the raw pointer
        shape = tuple(x.shape)
        if len(shape) != 4 or not all(a <= s <= b for a, s, b in zip(self.min_shape, shape, self.max_shape)):
            raise EngineError(f"{self.path}: batch {'x'.join(map(str, shape))} is outside the engine "
                              f"profile {'x'.join(map(str, self.min_shape))} .. "
                              f"{'x'.join(map(str, self.max_shape))}; rebuild with a wider --dynamic "
                              "or set preprocess.resize to a size inside it")
        if not self.context.set_input_shape(self.input_name, shape):
            raise EngineError(f"{self.path}: TensorRT refused input shape {'x'.join(map(str, shape))}; "
                              "rebuild the engine with a --dynamic profile that holds it")
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        if self._out is None or tuple(self._out.shape) != out_shape:
            self._out = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        self.context.set_tensor_address(self.input_name, int(x.data_ptr()))
        self.context.set_tensor_address(self.output_name, int(self._out.data_ptr()))
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"{self.path}: TensorRT execution failed for batch {shape}")
        return self._out

    def close(self) -> None:
        self.context = None
        self.engine = None
        self._out = None

    def __enter__(self) -> "TensorRTBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TorchTrtBackend:
    """Runs a Torch-TensorRT exported program (``.ep``) after the same sidecar check."""

    name = "tensorrt"

    def __init__(self, path: str | Path, *, device: str | int = "cuda", model: str | None = None) -> None:
        import torch

        from streamer.export.torchtrt import load_torchtrt

        _import_trt()
        self.path = Path(path)
        index = _cuda_index(device)
        sidecar = check_engine_compatible(self.path, model=model, device=index)  # that GPU, not cuda:0
        self.multiple = sidecar.multiple or _model_multiple(sidecar.model)  # as TensorRTBackend: frames padded for it
        self.device = torch.device("cuda", index)
        self.module = load_torchtrt(self.path, index)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)
            return self.module(x).float().cpu().numpy()

    def close(self) -> None:
        self.module = None

    def __enter__(self) -> "TorchTrtBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trt_backend(model: str, device: str = "cuda", arch: str | None = None,
                     fp16: bool = True, inflight: int = 1) -> TensorRTBackend | TorchTrtBackend:
    """Entry point for ``open_backend(..., backend="tensorrt")``: ``.engine`` or ``.ep`` files only.

    Precision is fixed when the engine is built, so ``fp16`` is ignored here; ``arch`` (a model
    name) is checked against the sidecar when given.
    """
    suffix = Path(model).suffix
    if suffix == ".engine":
        return TensorRTBackend(model, device=device, model=arch, inflight=inflight)
    if suffix == ".ep":
        return TorchTrtBackend(model, device=device, model=arch)
    raise EngineError(f"{model}: the tensorrt backend runs a built engine (.engine or .ep); build one "
                      f"on this device with `streamer export --model {Path(model).stem} --format engine "
                      "--precision fp16 -o engines/NAME.engine`")
