"""Thin command line over the library: parse, build a config, call one function.

Every subcommand lives in ``streamer/commands/<name>.py`` with ``add_parser(sub)`` that registers
itself and sets ``func(args) -> int``. ``StreamerError`` becomes one stderr line and exit 1
(``--debug`` shows the traceback). The library never prints or exits.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from streamer import __version__
from streamer.errors import StreamerError

# one module per subcommand, imported by name (no directory scan)
COMMANDS = ("run", "restore", "models", "info", "bench", "synth", "train", "eval", "eval_signs", "compare", "export", "calib", "cluster")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Remove dirt, raindrops and rain streaks from camera video in real time.",
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    _add_global_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:  # a missing module fails here: a subcommand lost in packaging is a bug
        importlib.import_module(f"streamer.commands.{name}").add_parser(sub)
    for command in sub.choices.values():  # `streamer run … --debug` works too
        _add_global_flags(command, default=argparse.SUPPRESS)  # unset: the top level's value stands
    return parser


def _add_global_flags(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="warnings and errors only")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not args.debug:  # streamer's INFO lines, not its libraries' (torch prints FakeTensor cache stats at exit)
        for noisy in ("torch", "onnxruntime", "openvino", "urllib3", "ray"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        return int(args.func(args) or 0)
    except StreamerError as exc:
        if args.debug:
            raise
        print(f"streamer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `streamer info --json | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the recipe in Python's docs
        return 1


if __name__ == "__main__":
    sys.exit(main())
