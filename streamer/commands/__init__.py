"""One module per CLI subcommand: argument parsing and printing only, work is in the library."""

from __future__ import annotations

import argparse

INT8_HELP = "onnxruntime/openvino: INT8 calibrated on calib/ (built once, cached)"
ARCH_HELP = "architecture of a .safetensors --model path that does not name it (files from `streamer train` do)"


def add_backend_args(p: argparse.ArgumentParser, backend: str | None = None, device: str | None = None) -> None:
    """`--backend` and `--device`, alike in every command that runs a model (None: the config decides)."""
    p.add_argument("--backend", default=backend, choices=("torch", "onnxruntime", "openvino", "tensorrt"),
                   help="inference engine: torch, onnxruntime, openvino (CPU, the fastest here), tensorrt (an engine file)")
    p.add_argument("--device", default=device,
                   help="cpu, cuda or cuda:N (default: cuda for tensorrt, cpu for the others)")


def add_int8_args(p: argparse.ArgumentParser, help: str = INT8_HELP, default: bool | None = False) -> None:
    """`--int8` and `--int8-all` into one ``int8`` (default, True or "all"), alike in every command
    that runs a model; `streamer run` passes ``default=None`` (not given: the YAML decides)."""
    p.add_argument("--int8", action="store_true", default=default, help=help)
    p.add_argument("--int8-all", dest="int8", action="store_const", const="all",
                   help="--int8 with the layers the model keeps fp32 quantized too: faster, costs more gain")
    p.add_argument("--no-int8", dest="int8", action="store_const", const=False,
                   help="the fp32 model even where the config asks for INT8 (e.g. configs/demo.yaml)")
