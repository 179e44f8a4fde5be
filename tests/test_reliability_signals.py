"""Durable output with a real `streamer` process: Ctrl-C and `kill` finish the file (exit 0 for a
camera-like source, 130 for a file job cut short),
`kill -9` leaves a file that decodes up to its last fragment, and a killed `streamer restore`
never leaves a half-written file under a final name."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_clip, read_video

from streamer.testing.wait import wait_until

CLI = [sys.executable, "-m", "streamer.cli"]


def _wait(cond, timeout_s: float = 60.0) -> bool:
    return wait_until(cond, timeout_s)  # real processes start slowly on 2 cores


def _start_run(tmp_path: Path, clip: Path, weights: Path, out: Path, *, loop: bool = True) -> subprocess.Popen[str]:
    cfg = tmp_path / "cam.yaml"
    cfg.write_text(f"source: {{url: {clip}, loop: {str(loop).lower()}, realtime: true}}\n"
                   f"sinks: [{out}]\nmodel: {{name: {weights}, arch: fast}}\n"
                   "backend: {threads: 1}\nencoder: {keyframe_s: 0.3, preset: ultrafast}\n")
    return subprocess.Popen([*CLI, "run", "--config", str(cfg), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _has_fragments(out: Path) -> bool:
    return out.exists() and out.stat().st_size > 4000


def _ctrl_c(proc: subprocess.Popen[str], out: Path) -> tuple[str, str]:
    """SIGINT once the run has written output; (stdout, stderr) after it exits."""
    try:
        assert _wait(lambda: _has_fragments(out)), "no output from streamer run"
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=30)
    finally:
        proc.kill()


def test_ctrl_c_flushes_every_frame_and_exits_0(clips: dict[str, Path], fast_weights: Path,
                                                tmp_path: Path) -> None:
    """SIGTERM takes the same path (test_pipeline.py checks it); here the frame count is exact."""
    out = tmp_path / "out.mp4"
    proc = _start_run(tmp_path, clips["small"], fast_weights, out)
    stdout, stderr = _ctrl_c(proc, out)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "(interrupted)" in stdout
    written = int(re.match(r"(\d+) frames", stdout).group(1))
    times, size, _ = read_video(out)
    assert len(times) == written and size == (96, 64)  # the encoder was flushed: nothing lost
    assert all(b > a for a, b in zip(times, times[1:]))


def test_ctrl_c_on_a_file_job_exits_130_with_a_playable_partial_output(fast_weights: Path,
                                                                      tmp_path: Path) -> None:
    """A file that would have ended by itself, stopped early: the output is complete up to there,
    and the exit status tells a script it is not the whole file."""
    clip = make_clip(tmp_path / "long.mp4", frames=600)  # 60 s at its own pace: Ctrl-C comes first
    out = tmp_path / "out.mp4"
    proc = _start_run(tmp_path, clip, fast_weights, out, loop=False)
    stdout, stderr = _ctrl_c(proc, out)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "partial output" in stdout
    written = int(re.match(r"(\d+) frames", stdout).group(1))
    times, _, _ = read_video(out)
    assert 0 < len(times) == written < 600


def test_sigkill_leaves_a_file_that_decodes_to_its_last_fragment(clips: dict[str, Path],
                                                                 fast_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _start_run(tmp_path, clips["small"], fast_weights, out)
    try:
        assert _wait(lambda: out.exists() and out.stat().st_size > 12000), "no output from streamer run"
        size_at_kill = out.stat().st_size
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    times, size, _ = read_video(out)  # no moov at the end needed: fragments carry their own index
    assert out.stat().st_size >= size_at_kill and size == (96, 64)
    assert len(times) >= 9 and all(b > a for a, b in zip(times, times[1:]))  # 0.3 s fragments at 10 fps


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("many")
    return [make_clip(root / f"clip{i}.mp4", frames=40, width=128, height=96) for i in range(5)]


def _check_outputs(outdir: Path, videos: list[Path]) -> list[str]:
    """Every file under a final name is complete; temporary files are hidden `.NAME.part`."""
    finals = sorted(p.name for p in outdir.iterdir() if not p.name.startswith("."))
    assert all(p.name.endswith(".part") for p in outdir.iterdir() if p.name.startswith("."))
    for name in finals:
        times, size, _ = read_video(outdir / name)
        assert len(times) == 40 and size == (128, 96), name
    assert set(finals) <= {v.name for v in videos}
    return finals


def test_killed_restore_never_leaves_a_half_file(videos: list[Path], fast_weights: Path,
                                                 tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "restore", *map(str, videos), "-o", str(outdir), "--model",
                             str(fast_weights), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # kill as soon as the first video is done: the second one is being written
        assert _wait(lambda: outdir.is_dir() and any(p.suffix == ".mp4" for p in outdir.iterdir()))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    finals = _check_outputs(outdir, videos)
    assert 1 <= len(finals) < len(videos)


def test_interrupted_restore_removes_its_temporary_file(videos: list[Path], fast_weights: Path,
                                                       tmp_path: Path) -> None:
    """Ctrl-C in the middle of the second video: the first stays, nothing else is left."""
    from streamer.api import restore

    def progress(path: Path, done: int, total: int | None) -> None:
        if path == videos[1] and done == 10:
            raise KeyboardInterrupt

    outdir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        restore(videos[:3], outdir, str(fast_weights), threads=1, on_progress=progress)
    assert _check_outputs(outdir, videos) == [videos[0].name]
    assert [p.name for p in outdir.iterdir()] == [videos[0].name]  # no .part left over


def test_ctrl_c_works_even_when_started_with_sigint_ignored(clips: dict[str, Path], fast_weights: Path,
                                                            tmp_path: Path) -> None:
    """A parent that ignores SIGINT (`streamer run … &` in a script) must not make Ctrl-C a no-op."""
    out = tmp_path / "out.mp4"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child
    try:
        proc = _start_run(tmp_path, clips["small"], fast_weights, out)
    finally:
        signal.signal(signal.SIGINT, previous)
    stdout, stderr = _ctrl_c(proc, out)
    assert proc.returncode == 0 and "(interrupted)" in stdout, stderr


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGTERM)])
def test_a_second_signal_does_not_cut_the_summary_or_change_the_exit(first: int, second: int,
                                                                    fast_weights: Path, tmp_path: Path) -> None:
    """`timeout` signals the process group too, and impatient users press Ctrl-C twice: the first
    stops the job, repeats are ignored, and the summary and exit 130 stay (were 143 or no summary)."""
    clip = make_clip(tmp_path / "long.mp4", frames=600)
    out = tmp_path / "out.mp4"
    proc = _start_run(tmp_path, clip, fast_weights, out, loop=False)
    try:
        assert _wait(lambda: _has_fragments(out)), "no output from streamer run"
        proc.send_signal(first)
        proc.send_signal(second)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "partial output" in stdout and "Traceback" not in stderr
    assert len(read_video(out)[0]) == int(re.match(r"(\d+) frames", stdout).group(1))


def test_sigterm_stops_restore_like_ctrl_c(videos: list[Path], fast_weights: Path, tmp_path: Path) -> None:
    """`docker stop`/systemd send SIGTERM: restore finishes nothing half-way, leaves no .part, exits 130."""
    outdir = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "restore", *map(str, videos), "-o", str(outdir), "--model",
                             str(fast_weights), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: outdir.is_dir() and any(p.name.endswith(".part") for p in outdir.iterdir()))
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "streamer: interrupted" in stderr, stderr
    assert not [p for p in outdir.iterdir() if p.name.endswith(".part")]
    assert len(_check_outputs(outdir, videos)) < len(videos)
