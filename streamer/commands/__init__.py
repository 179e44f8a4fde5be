"""One module per CLI subcommand: argument parsing and printing only, work is in the library."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Callable, Iterator

INT8_HELP = "onnxruntime/openvino: INT8 calibrated on calib/ (built once, cached)"
ARCH_HELP = "architecture of a .safetensors --model path that does not name it (files from `streamer train` do)"


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum`` (`--limit -1` took all photos but one: a slice)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"at least {minimum}"
    return parse


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


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Ctrl-C, `kill` and `docker stop`/systemd's SIGTERM all take the one clean path: the first
    raises KeyboardInterrupt (outputs are closed, the summary printed); every later one is ignored
    until the process exits (`timeout` and a second Ctrl-C would otherwise cut the summary or turn
    exit 130 into 143), except a third Ctrl-C, which kills at once (a close that hangs). SIGINT is handled even when a parent started us with it ignored (a
    `cmd &` in a script does; Python then installs no handler of its own)."""
    stopping: list[int] = []

    def first_stops(signum: int, frame: object) -> None:
        stopping.append(signum)
        if len(stopping) == 1:  # repeats return quietly (this handler stays: swapping in SIG_IGN
            raise KeyboardInterrupt  # races with a repeat already queued, and Python prints that)
        if stopping.count(signal.SIGINT) >= 3:  # Ctrl-C three times: a way out of a hung close
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    previous = {sig: signal.signal(sig, first_stops) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not stopping:  # a stopped process stays deaf to repeats until it exits
            for sig, handler in previous.items():
                signal.signal(sig, handler)
