"""A push output whose server was never there: the run goes on (files are written), the result
says so, and `streamer run` fails at the end; a view nobody watched is not a failure."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from conftest import read_video
from streamer.api import run
from streamer.cli import main
from streamer.commands.run import _summary
from streamer.config import RunConfig
from streamer.errors import SinkError
from streamer.pipeline import RunResult
from streamer.sinks.base import Delivery
from streamer.stats import RunStats


pytestmark = pytest.mark.usefixtures("identity_backend")  # frames pass through unchanged


def dead_url(path: str = "x", login: str = "") -> str:
    """An rtsp:// URL on a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"rtsp://{login}127.0.0.1:{s.getsockname()[1]}/{path}"


def test_streamer_run_fails_at_the_end_when_a_push_never_connected(
        clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It ended with exit 0 and a "dropped 12 frames" line: a push that delivered nothing read as
    success. The recording beside it is still written in full."""
    cfg = tmp_path / "run.yaml"
    # at the clip's pace (1.2 s): the refused connect comes before the end, so there is a verdict
    cfg.write_text(f"source: {{url: {clips['small']}, realtime: true}}\nbackend: {{threads: 1}}\n")
    push = dead_url(login="cam:secret@")
    argv = ["run", "--config", str(cfg), "--sink", push, "--sink", str(tmp_path / "out.mp4"),
            "--sink", "view:0", "--no-progress"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "12 frames in" in out.splitlines()[0]
    shown = push.replace("secret", "***")
    why = "Connection refused"
    assert len(err.splitlines()) == 1  # the view, unwatched, is not named
    assert re.fullmatch(rf"streamer: error: RTSP output {re.escape(shown)} never connected \(({why})\): "
                        r"0 of 12 frames delivered\n", err)
    assert len(read_video(tmp_path / "out.mp4")[0]) == 12


def test_the_library_reports_it_in_the_result_and_raises_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    push = dead_url()
    result = run({"source": {"url": str(clips["small"]), "realtime": True}, "backend": {"threads": 1},
                  "sinks": [push, "view:0", "null", str(tmp_path / "out.mkv")]})
    assert result.frames_out == 12
    assert [(d.output, d.frames, d.delivered) for d in result.outputs] == [(f"RTSP output {push}", 12, 0)]
    assert result.undelivered == result.outputs


def test_a_view_nobody_watched_is_not_a_failure(clips: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = RunConfig.model_validate({"source": {"url": str(clips["small"])}, "sinks": ["view:0"],
                                    "backend": {"threads": 1}})
    result = run(cfg)
    assert result.frames_out == 12 and result.outputs == [] and _summary(cfg, result) == 0


def test_a_push_that_delivered_some_frames_is_a_line_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    """Lost its server after a while: the log said so then; the summary says how much went out."""
    cfg = RunConfig.model_validate({"source": {"url": "in.mp4"}, "sinks": ["rtsp://h/x"]})
    lost = Delivery("RTSP output rtsp://h/x", 240, 200, "Connection reset by peer")
    stats = RunStats()
    stats.on_end("main")  # the file ran out
    result = RunResult(240, 240, 40, 0, 10.0, False, stats, [lost])
    assert _summary(cfg, result) == 0
    assert ("RTSP output rtsp://h/x: 200 of 240 frames delivered (last error: Connection reset by peer)"
            in capsys.readouterr().out.splitlines())


def test_a_site_names_the_camera_whose_push_never_connected(clips: dict[str, Path], tmp_path: Path) -> None:
    push = dead_url("gate")
    cfg = RunConfig.model_validate({
        "cameras": [{"name": "gate", "source": str(clips["small"]), "sinks": [push, str(tmp_path / "gate.mp4")]},
                    {"name": "door", "source": str(clips["small"]), "sinks": ["null"]}],
        "backend": {"threads": 1}})
    result = run(cfg)
    assert not result.errors and result.frames_out == 24
    assert [d.frames for d in result.cameras["gate"].outputs] == [12] and result.cameras["door"].outputs == []
    assert [d.output for d in result.undelivered] == [f"RTSP output {push}"]
    with pytest.raises(SinkError, match=rf"^gate: RTSP output {re.escape(push)} never connected \(.*\): 0 of 12 frames delivered$"):
        _summary(cfg, result)
    assert len(read_video(tmp_path / "gate.mp4")[0]) == 12
