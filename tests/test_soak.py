"""Soak, CI size: 300 frames on a looping clip through the real run path into a null sink; RSS
after warm-up must not grow by 5% or more. The long version is in docs/reliability.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.cli import main
from streamer.config import RunConfig
from streamer.errors import ConfigError
from streamer.soak import rss_bytes, soak


def test_rss_flat_after_warmup(clips: dict[str, Path], fast_weights: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "bench", "--soak", "--frames", "300", "--warmup", "100", "--size", "160x120",
                 "--clip", str(clips["small"]), "--model", str(fast_weights), "--arch", "fast",
                 "--threads", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 300 and report["dropped"] == 0  # a file source never drops
    assert len(report["samples"]) >= 40  # RSS sampled all along, not just twice
    assert report["growth_pct"] < 5.0, report["samples"]
    assert (report["model"], report["backend"], report["int8"]) == (str(fast_weights), "torch", False)


def test_soak_needs_a_frame_limit_above_warmup(clips: dict[str, Path]) -> None:
    cfg = RunConfig.model_validate({"source": {"url": str(clips["small"])}, "max_frames": 50})
    with pytest.raises(ConfigError, match=r"needs max_frames \(50\) above warm-up \(100\)"):
        soak(cfg, warmup_frames=100)
    assert 10e6 < rss_bytes() < 100e9
