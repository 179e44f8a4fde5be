"""Long-run check: run the pipeline on a looping source for N frames and watch the process RSS.

Memory that keeps growing after warm-up is a leak that would take a camera box down after days;
the report says how much RSS grew between the end of warm-up and the end of the run. The same
``run(cfg)`` as `streamer run` does the work, so what is measured is what ships.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any

from streamer.config import RunConfig
from streamer.errors import ConfigError


def rss_bytes() -> int:
    """Resident set size now (Linux /proc); elsewhere the peak, which can only over-report growth."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def soak(cfg: RunConfig, *, warmup_frames: int, samples: int = 50) -> dict[str, Any]:
    """Run ``cfg`` (needs ``max_frames``) and report RSS after warm-up vs at the end, in MB and %."""
    if not cfg.max_frames or warmup_frames >= cfg.max_frames:
        raise ConfigError(f"soak: needs max_frames ({cfg.max_frames}) above warm-up ({warmup_frames}); "
                          "e.g. --frames 3000")
    from streamer.api import run

    every = max(1, (cfg.max_frames - warmup_frames) // samples)
    rss: list[tuple[int, int]] = []

    def progress(done: int, total: int | None) -> None:
        if done == warmup_frames or (done > warmup_frames and (done - warmup_frames) % every == 0):
            rss.append((done, rss_bytes()))

    result = run(cfg, on_progress=progress)
    if len(rss) < 2:
        raise ConfigError(f"soak: the source ended after {result.frames_out} frames, before warm-up "
                          "was over; set source.loop: true")
    warm, end = rss[0][1], rss[-1][1]
    mb = 1 / 1e6
    return {
        "frames": result.frames_out, "warmup_frames": warmup_frames, "seconds": round(result.seconds, 1),
        "fps": round(result.fps, 2), "dropped": result.dropped, "reconnects": result.reconnects,
        "rss_mb": {"warm": round(warm * mb, 1), "end": round(end * mb, 1),
                   "peak": round(max(v for _, v in rss) * mb, 1)},
        "growth_mb": round((end - warm) * mb, 2),
        "growth_pct": round(100.0 * (end - warm) / warm, 2),
        "samples": [[n, round(v * mb, 1)] for n, v in rss],
    }
