"""`streamer info`: what this machine can run (backends, GPU, RTSP server, cameras, versions)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="what this machine can run: backends, devices, versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _state(entry: dict, detail: str = "") -> str:
    """'yes DETAIL' or 'no (WHY)'."""
    if entry["available"]:
        return f"yes  {detail}".rstrip()
    return f"no   ({entry.get('reason', 'not available')})"


def _isa_line(isa: list[str]) -> str:
    """The features, and whether INT8 has dot-product instructions (speed tables name their host's)."""
    from streamer.sysinfo import INT8_DOT

    if not isa:
        return "unknown"
    return " ".join(isa) + (" (INT8 dot products)" if INT8_DOT & set(isa) else " (no INT8 dot-product instructions)")


def run(args: argparse.Namespace) -> int:
    from streamer.sysinfo import report

    r = report()
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    h, c = r["host"], r["int8_cache"]
    extras = [f"{k} {v}" for k, v in r["optional"].items() if v]
    lines = [
        ("host", f"{h['cpu']} × {h['cpu_count']}, GPU: {h['gpu'] or 'none'} ({h['os']})"),
        ("cpu features", _isa_line(h["cpu_isa"])),
        ("versions", "  ".join(f"{k} {v}" for k, v in r["versions"].items())),
        ("optional", "  ".join(extras) or "none installed"),
    ]
    for name, b in r["backends"].items():
        detail = b.get("devices") or b.get("providers") or b.get("version") or ""
        lines.append((f"backend {name}", _state(b, ", ".join(detail) if isinstance(detail, list) else detail)))
    lines += [
        ("rtsp-serve", _state(r["rtsp_server"], r["rtsp_server"].get("python", ""))),
        ("cameras", ", ".join(r["cameras"]) or "none (/dev/video*)"),
        ("int8 cache", f"{c['dir']} ({c['models']} quantized)"),
    ]
    for label, text in lines:
        print(f"{label:<20}{text}")
    return 0
