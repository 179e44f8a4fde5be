"""`streamer bench --streams`: N cameras in one site, with and without batching, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.bench import stream_counts
from streamer.cli import main
from streamer.errors import ConfigError


def test_streams_json_shape(fast_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--streams", "1,2", "--model", str(fast_weights), "--arch", "fast",
                 "--size", "96x64", "--frames", "6", "--threads", "1", "--batch-timeout-ms", "500", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clip"]["size"] == "96x64" and report["streams"]["frames_per_camera"] == 6
    runs = {(r["streams"], r["max_batch"]): r for r in report["streams"]["results"]}
    assert set(runs) == {(1, 1), (2, 1), (2, 2)}
    for (n, _), r in runs.items():
        assert r["frames"] == 6 * n and r["aggregate_fps"] > 0
        assert len(r["per_camera_fps"]) == n and r["per_camera_fps_min"] > 0
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p95"]
    assert runs[(2, 1)]["frames_per_call"] == 1.0 and not runs[(2, 1)]["batching"]
    assert runs[(2, 2)]["frames_per_call"] > 1.0 and runs[(2, 2)]["batching"]
    assert "runs" not in report and report["host"]["cpu_count"] >= 1


def test_streams_table(fast_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--streams", "2", "--model", str(fast_weights), "--arch", "fast",
                 "--size", "96x64", "--frames", "4", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "total fps" in lines[1] and len(lines) == 5  # header, columns, N=1, N=2 x2


@pytest.mark.parametrize("spec, counts", [("8", [1, 2, 4, 8]), ("6", [1, 2, 4, 6]), ("1", [1]),
                                          ("4,1,2,2", [1, 2, 4])])
def test_stream_counts(spec: str, counts: list[int]) -> None:
    assert stream_counts(spec) == counts


@pytest.mark.parametrize("spec", ["0", "two", "", "2,-1"])
def test_stream_counts_refuses_nonsense(spec: str) -> None:
    with pytest.raises(ConfigError, match="--streams"):
        stream_counts(spec)


def test_streams_run_the_precision_asked_and_refuse_what_they_would_drop(
        fast_weights: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--int8 reached the single-stream bench only; --streams ran fp32 under the same header."""
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    common = ["bench", "--streams", "1", "--model", str(fast_weights), "--arch", "fast", "--size", "96x64",
              "--frames", "3", "--threads", "1", "--backend", "onnxruntime"]
    assert main([*common, "--int8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["int8"] is True
    assert any(p.suffix == ".onnx" for p in (tmp_path / "int8").iterdir())  # the quantized file ran
    for flag in (["--preset", "ultrafast"], ["--latency"], ["--warmup", "3"]):
        assert main([*common, *flag]) == 1
        assert f"{flag[0]}: has no meaning for --streams" in capsys.readouterr().err
