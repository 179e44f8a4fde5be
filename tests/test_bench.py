from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.cli import main
from streamer.errors import ConfigError
from streamer.stats import STAGES


def test_bench_json_shape(fast_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--model", str(fast_weights), "--arch", "fast", "--size", "96x64",
                 "--frames", "6", "--threads", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == 1 and report["clip"]["size"] == "96x64" and report["clip"]["frames"] == 6
    assert set(report["runs"]) == {"passthrough", "pipeline"}
    for name, run in report["runs"].items():
        assert run["frames"] == 6 and run["fps"] > 0
        assert set(run["stage_ms"]) == set(STAGES)
    assert report["runs"]["pipeline"]["stage_ms"]["network"] > 0
    assert report["runs"]["passthrough"]["stage_ms"]["network"] == 0
    cpu = {name: run["cpu_ms_per_frame"] for name, run in report["runs"].items()}
    assert cpu["passthrough"] > 0 and report["network_cpu_ms_per_frame"] == pytest.approx(
        cpu["pipeline"] - cpu["passthrough"], abs=0.011)
    assert {"torch", "onnxruntime", "av", "python"} <= set(report["versions"])
    assert report["host"]["cpu_count"] >= 1 and report["threads"]["network"] == 1


def test_bench_refuses_nonsense() -> None:
    from streamer.bench import bench

    with pytest.raises(ConfigError, match="too few"):
        bench(frames=1)
    with pytest.raises(ConfigError, match="clip not found"):
        bench(clip="/nonexistent.mp4")


def test_bench_latency_section(fast_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--model", str(fast_weights), "--arch", "fast", "--size", "320x96",
                 "--frames", "4", "--threads", "1", "--latency", "--json"])
    assert code == 0
    lat = json.loads(capsys.readouterr().out)["view_latency"]
    assert lat["frames_received"] > 0 and lat["frames_received"] <= lat["frames_sent"]
    assert 0 < lat["latency_ms_median"] <= lat["latency_ms_p95"]


def test_bench_text_says_which_precision_ran(fast_weights: Path, tmp_path: Path, monkeypatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An INT8 run and an fp32 run must not print the same header (they differ 1.5-2x in speed)."""
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    common = ["bench", "--model", str(fast_weights), "--arch", "fast", "--size", "96x64", "--frames", "2",
              "--threads", "1", "--backend", "onnxruntime"]
    assert main(common) == 0
    fp32 = capsys.readouterr().out.splitlines()[0]
    assert main([*common, "--int8"]) == 0
    int8 = capsys.readouterr().out.splitlines()[0]
    assert "onnxruntime/cpu INT8," in int8 and "INT8" not in fp32 and "onnxruntime/cpu," in fp32
