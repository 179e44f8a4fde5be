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
        assert run["stage_ms"]["decode"] > 0  # the file source times its own decoding
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
    # the cached INT8 file is an export with its sidecar: run as a file, the report says what it is
    [cached] = (tmp_path / "int8").glob("*.onnx")
    assert main([*common[:2], str(cached), *common[5:], "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)["exported"]
    assert exported["precision"] == "int8" and exported["format"] == "onnx" and exported["calibration_sha256"]
    assert main([*common[:2], str(cached), *common[5:]]) == 0
    assert "onnxruntime/cpu INT8 (onnx export)," in capsys.readouterr().out.splitlines()[0]


def test_bench_checks_the_model_before_measuring(tmp_path: Path) -> None:
    """A fixed-size export takes bigger frames in tiles of its size, one per call (its batch is
    1), and a --size it cannot tile is refused at once, naming --size."""
    from streamer.bench import bench
    from streamer.errors import EngineError

    assert main(["export", "--model", "fast", "--size", "96x64", "-o", str(tmp_path / "f.onnx")]) == 0
    assert bench(str(tmp_path / "f.onnx"), "onnxruntime", size=(160, 64), frames=2, threads=1)["runs"]
    with pytest.raises(EngineError, match=r"built for 96x64 input, got 64x96; .*bench: --size 96x64"):
        bench(str(tmp_path / "f.onnx"), "onnxruntime", size=(64, 128), frames=2, threads=1)


def test_bench_latency_help_names_the_transport_it_measures(capsys: pytest.CaptureFixture[str]) -> None:
    """--latency reads the frames back as the page does (its WebSocket), no longer as MJPEG."""
    import inspect

    from streamer.sinks.view.latency import TRANSPORTS, measure_view_latency

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    default = inspect.signature(measure_view_latency).parameters["transport"].default
    assert TRANSPORTS[default].startswith("websocket")
    assert "WebSocket" in help_text and "MJPEG" not in help_text, help_text
