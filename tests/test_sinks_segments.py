"""Loop recording (`segment_s`, `keep`): files of N seconds that each play alone, the oldest deleted."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

from conftest import make_clip, read_video
from streamer.api import run
from streamer.config import RunConfig
from streamer.errors import ConfigError
from streamer.sinks import open_sink

NAME = re.compile(r"cam-\d{8}-\d{6}-(\d{4})\.(?:mp4|mkv)")


def _run(clip: Path, out: Path, fast_weights: Path, suffix: str = ".mp4", frames: int = 25, **sink) -> None:
    cfg = RunConfig.model_validate({
        "source": {"url": str(clip)}, "sinks": [{"url": str(out / f"cam{suffix}"), **sink}],
        "model": {"name": str(fast_weights), "arch": "fast"}, "backend": {"threads": 1}})
    result = run(cfg)
    assert result.frames_out == frames


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_segments_split_the_video_on_keyframes_and_keep_every_frame(fast_weights: Path, tmp_path: Path,
                                                                   suffix: str) -> None:
    """Each file plays alone from 0 (MKV would keep the camera's running time: a later segment of
    a long run would show as hours long)."""
    clip = make_clip(tmp_path / "in.mp4", frames=25, fps=10)  # 2.5 s
    _run(clip, tmp_path / "out", fast_weights, suffix, segment_s=1.0)
    files = sorted((tmp_path / "out").iterdir())
    assert [int(NAME.fullmatch(f.name).group(1)) for f in files] == [0, 1, 2]
    videos = [read_video(f) for f in files]
    assert [len(times) for times, _, _ in videos] == [10, 10, 5]  # 1 s of 10 fps each, the rest in the last
    for times, _, duration in videos:
        assert times[0] == pytest.approx(0.0, abs=1e-3) and duration < 1.2
    for f in files:
        with av.open(str(f)) as c:  # each file starts on a keyframe: it plays on its own
            assert next(c.demux(c.streams.video[0])).is_keyframe


def test_keep_deletes_the_oldest_segments_across_runs(fast_weights: Path, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=25, fps=10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.mp4").write_bytes(b"not ours")  # other files in the folder are left alone
    _run(clip, out, fast_weights, segment_s=0.5, keep=3)  # 5 segments, 3 left
    first = sorted(p.name for p in out.glob("cam-*.mp4"))
    assert [NAME.fullmatch(n).group(1) for n in first] == ["0002", "0003", "0004"]
    _run(clip, out, fast_weights, segment_s=0.5, keep=3)  # a restart counts the old ones too
    second = sorted(p.name for p in out.glob("cam-*.mp4"))
    assert len(second) == 3 and not set(first) & set(second)
    assert (out / "notes.mp4").exists()
    assert all(len(read_video(out / n)[0]) == 5 for n in second)


def test_segments_a_killed_recorder_left_without_frames_do_not_count_toward_keep(fast_weights: Path,
                                                                                 tmp_path: Path) -> None:
    """SIGKILL between opening a segment and its first fragment leaves a header (or nothing); kept
    and counted, it would push a real recording out of ``keep``."""
    clip = make_clip(tmp_path / "in.mp4", frames=10, fps=10)
    out = tmp_path / "out"
    out.mkdir()
    _run(clip, out, fast_weights, segment_s=0.5, keep=3, frames=10)  # 2 segments
    real = sorted(out.glob("cam-*.mp4"))
    prefix, n = real[1].stem[:-4], int(real[1].stem[-4:])  # the last run's newest, then the killed ones
    (out / f"{prefix}{n + 2:04d}.mp4").write_bytes(b"")  # killed before the header
    with av.open(str(out / f"{prefix}{n + 1:04d}.mp4"), "w", options={"movflags": "frag_keyframe+empty_moov"}) as c:
        c.add_stream("libx264", rate=10).width = 64  # killed after the header: no packet
    _run(clip, out, fast_weights, segment_s=0.5, keep=3, frames=10)  # 2 more: only the oldest real one goes
    left = sorted(out.glob("cam-*.mp4"))
    assert len(left) == 3 and real[0] not in left and left[0] == real[1]
    assert all(len(read_video(p)[0]) == 5 for p in left)


def test_an_older_segment_that_cannot_be_read_is_left_alone(fast_weights: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Any error reading an older segment (EACCES, EIO) counted as "no frames" and deleted it:
    only a file that is truly frameless goes; one that cannot be read is neither deleted nor
    counted in ``keep``."""
    import shutil

    import streamer.sinks.segments as segments

    clip = make_clip(tmp_path / "in.mp4", frames=10, fps=10)
    out = tmp_path / "out"
    out.mkdir()
    _run(clip, out, fast_weights, segment_s=0.5, keep=3, frames=10)  # 2 segments
    real = sorted(out.glob("cam-*.mp4"))
    locked = out / f"{real[1].stem[:-4]}{int(real[1].stem[-4:]) + 1:04d}.mp4"
    shutil.copy(real[1], locked)  # a recording this user may not read (as root, chmod would not do)
    opened = av.open

    def no_permission(file: object, *args: object, **kw: object) -> object:
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return opened(file, *args, **kw)

    monkeypatch.setattr(segments.av, "open", no_permission)
    _run(clip, out, fast_weights, segment_s=0.5, keep=3, frames=10)  # 2 more: the oldest real one goes
    left = sorted(out.glob("cam-*.mp4"))
    assert locked in left and real[0] not in left and len(left) == 4
    assert "cannot read this older segment (Permission denied); left alone" in caplog.text


def test_segment_options_are_checked() -> None:
    with pytest.raises(ValueError, match="keep needs segment_s"):
        RunConfig.model_validate({"source": {"url": "x.mp4"}, "sinks": [{"url": "o.mp4", "keep": 3}]})
    with pytest.raises(ConfigError, match="segment_s .* is for .mp4/.mkv files"):
        open_sink("rtsp://127.0.0.1:8554/x", segment_s=60)


def test_a_timeline_that_jumps_back_starts_a_new_segment(tmp_path: Path) -> None:
    import numpy as np

    from streamer.frame import Frame

    sink = open_sink(str(tmp_path / "cam.mp4"), fps=10, segment_s=60)
    image = np.zeros((16, 16, 3), np.uint8)
    for i, pts in enumerate([100.0, 100.1, 100.2, 0.0, 0.1]):  # a reconnect resets the camera's PTS
        sink.write(Frame(image, pts, i))
    sink.close()
    assert [len(read_video(p)[0]) for p in sink.segments] == [3, 2]
