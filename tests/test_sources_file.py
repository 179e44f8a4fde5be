from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import make_clip, read_video
from streamer.errors import ConfigError, SourceError
from streamer.sources import open_source
from streamer.sources.file import FileSource


def test_file_keeps_every_frame_and_its_pts(clips: dict[str, Path]) -> None:
    times, size, _ = read_video(clips["offset"])
    src = open_source(str(clips["offset"]), name="cam1")
    frames = list(src)
    assert isinstance(src, FileSource) and not src.live
    assert [f.pts_s for f in frames] == pytest.approx(times)
    assert frames[0].pts_s == pytest.approx(0.5)  # container PTS, not a counter
    assert [f.index for f in frames] == list(range(len(times)))
    assert frames[0].image.shape == (size[1], size[0], 3) and frames[0].image.dtype.name == "uint8"
    assert {f.source for f in frames} == {"cam1"}
    assert src.total_frames == len(times)


def test_loop_restarts_with_increasing_pts(clips: dict[str, Path]) -> None:
    src = open_source(str(clips["small"]), loop=True)
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 30:
            src.close()
    pts = [f.pts_s for f in frames]
    assert len(frames) == 30
    assert all(b - a == pytest.approx(0.1) for a, b in zip(pts, pts[1:]))
    assert src.total_frames is None


def test_close_from_another_thread_stops_iteration(clips: dict[str, Path]) -> None:
    import threading

    src = open_source(str(clips["small"]), loop=True)
    it = iter(src)
    next(it)
    threading.Thread(target=src.close).start()
    rest = list(it)  # ends instead of looping forever
    assert len(rest) < 1000


@pytest.mark.parametrize("content, match", [
    (None, "file not found"),
    (b"", "empty"),
    (b"this is not a video\n" * 50, "not a readable video"),
])
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=match) as err:
        open_source(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'http'"):
        open_source("http://example.invalid/cam")


def test_a_relative_path_not_found_says_where_it_was_looked_for(tmp_path, monkeypatch) -> None:
    """`source: assets/demo.mp4` in a config run from another folder: the message names the folder."""
    from streamer.sources.file import probe

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match=rf"assets/demo\.mp4: file not found \(looked in {tmp_path}"):
        probe("assets/demo.mp4")


def test_a_damaged_packet_costs_its_frame_not_the_rest(tmp_path: Path, caplog) -> None:
    """Bit rot in one packet (a dashcam card): decoding goes on past it, as ffmpeg and players do;
    before, the first bad packet ended the job after 8 of 20 frames."""
    import av

    clip = make_clip(tmp_path / "rot.mp4", frames=20)
    with av.open(str(clip)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    pos, size = packets[8]
    data = bytearray(clip.read_bytes())
    data[pos:pos + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="streamer.sources.file"):
        frames = list(FileSource(clip))
    assert 17 <= len(frames) <= 19 and frames[-1].pts_s > frames[8].pts_s
    assert "1 damaged packet(s) skipped" in caplog.text
    with pytest.raises(SourceError, match=r": is a folder; give a video file"):
        FileSource(tmp_path)


def test_a_file_it_may_not_read_is_not_called_damaged(clips: dict[str, Path], monkeypatch) -> None:
    """As another user, a mode-000 file said "not a readable video (Permission denied)": it reads
    like a corrupt file. (Tests run as root, who may read anything, so av.open is made to refuse.)"""
    import errno

    def refuse(path, *args, **kwargs):
        raise av.error.PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(SourceError, match=r"small\.mp4: no permission to read it \(Permission denied\); check its owner"):
        FileSource(clips["small"])


def test_a_display_rotation_is_applied_like_a_player_does(tmp_path: Path) -> None:
    """A phone clip or a camera mounted on its side: stored 96×64 with a 90° display rotation, it
    plays 64×96; the network and the output get it upright (as ffmpeg does when it re-encodes)."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display rotation (PyAV >= 18 can)")
    path = tmp_path / "phone.mp4"
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:8, :8] = 255  # a white corner: top-left as stored
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv444p"
        stream.set_display_rotation(90)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    image = next(iter(FileSource(path))).image
    assert image.shape == (96, 64, 3)  # upright: taller than wide
    assert image[-8:, :8].mean() > 200 and image[:8, :8].mean() < 50  # 90° counter-clockwise: corner at bottom-left
