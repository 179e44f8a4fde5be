"""Torch-TensorRT (dynamo IR): compile the PyTorch module, save an exported program, load it back.

INT8 goes through NVIDIA ModelOpt post-training quantization (the path Torch-TensorRT documents
for the dynamo IR): fake-quant nodes calibrated on the calibration frames, then compiled.
Everything here is imported on use; ``torch_tensorrt`` is in the ``tensorrt`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from streamer.errors import EngineError, ExportError, install_extra
from streamer.export.calibration import CalibSet

Shape = tuple[int, int, int]
MISSING = f"Torch-TensorRT export needs the tensorrt extra: {install_extra('tensorrt')}"


def import_torch_tensorrt() -> Any:
    try:
        import torch_tensorrt  # optional extra
    except ImportError as exc:
        raise ExportError(MISSING) from exc
    return torch_tensorrt


@dataclass(frozen=True)
class TorchTrtResult:
    path: Path
    torch_tensorrt_version: str
    tensorrt_version: str | None
    profile: dict[str, list[int]]


def _quantize_int8(net: nn.Module, calib: CalibSet, device: str) -> nn.Module:
    import torch

    try:
        import modelopt.torch.quantization as mtq
    except ImportError as exc:
        raise ExportError("--format torchtrt --precision int8: needs NVIDIA ModelOpt: "
                          "pip install nvidia-modelopt; or use --format engine --precision int8") from exc

    def forward_loop(model: nn.Module) -> None:
        with torch.no_grad():
            for batch in calib.batches():
                model(torch.from_numpy(batch).to(device))

    return mtq.quantize(net, mtq.INT8_DEFAULT_CFG, forward_loop)


def compile_torchtrt(net: nn.Module, out_path: str | Path, *, precision: str,
                     profile: tuple[Shape, Shape, Shape], workspace_gib: float = 2.0,
                     device: int = 0, calib: CalibSet | None = None) -> TorchTrtResult:
    """Compile with ``torch_tensorrt.compile(ir="dynamo")`` and save an exported program (.ep)."""
    torch_tensorrt = import_torch_tensorrt()
    import torch

    out_path = Path(out_path)
    dev = f"cuda:{device}"
    net = net.eval().float().to(dev)
    lo, opt, hi = ((n, 3, h, w) for n, h, w in profile)
    inputs = [torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=torch.float32)]
    example = torch.rand(*opt, device=dev)
    precisions = {"fp32": {torch.float32}, "fp16": {torch.float16, torch.float32},
                  "int8": {torch.int8, torch.float16, torch.float32}}[precision]
    settings = dict(ir="dynamo", inputs=inputs, enabled_precisions=precisions,
                    workspace_size=int(workspace_gib * (1 << 30)), device=torch_tensorrt.Device(dev),
                    min_block_size=1)
    try:
        with torch.no_grad():
            if precision == "int8":
                if calib is None:
                    raise ExportError(f"{out_path}: int8 needs calibration frames (--calib)")
                from modelopt.torch.quantization.utils import export_torch_mode

                net = _quantize_int8(net, calib, dev)
                with export_torch_mode():
                    program = torch.export.export(net, (example,), strict=False)
                    dynamo_settings = {k: v for k, v in settings.items() if k != "ir"}
                    compiled = torch_tensorrt.dynamo.compile(program, **dynamo_settings)
            else:
                compiled = torch_tensorrt.compile(net, **settings)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            torch_tensorrt.save(compiled, str(out_path), output_format="exported_program",
                                inputs=[example])  # `inputs` is accepted by 2.4 and later
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ExportError(f"{out_path}: Torch-TensorRT compile failed ({str(exc).splitlines()[0]})") from exc
    try:
        import tensorrt

        trt_version: str | None = str(tensorrt.__version__)
    except ImportError:
        trt_version = None
    return TorchTrtResult(out_path, str(torch_tensorrt.__version__), trt_version,
                          {"min": list(lo), "opt": list(opt), "max": list(hi)})


def load_torchtrt(path: str | Path, device: int = 0) -> nn.Module:
    """Reload a saved program (needs torch_tensorrt imported so its TensorRT ops are registered)."""
    try:
        torch_tensorrt = import_torch_tensorrt()
    except ExportError as exc:
        raise EngineError(f"{path}: {MISSING}") from exc
    try:
        return torch_tensorrt.load(str(path)).module().to(f"cuda:{device}")
    except (RuntimeError, ValueError, OSError) as exc:
        raise EngineError(f"{path}: cannot load the Torch-TensorRT program ({str(exc).splitlines()[0]}); "
                          "rebuild it on this device") from exc
