from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import read_video
from streamer.config import EncoderConfig
from streamer.errors import ConfigError, SinkError
from streamer.sinks import open_sink
from streamer.sinks.file import FileSink
from streamer.sinks.null import NullSink
from streamer.sources import open_source


def _copy(src: Path, dst: Path, **kw) -> FileSink:
    source = open_source(str(src))
    sink = open_sink(str(dst), fps=source.info.fps, **kw)
    assert isinstance(sink, FileSink)
    with sink:
        for frame in source:
            sink.write(frame)
    return sink


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_file_sink_keeps_frames_and_timestamps(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    _copy(clips["offset"], out)
    times_in, size_in, dur_in = read_video(clips["offset"])
    times_out, size_out, dur_out = read_video(out)
    assert size_out == size_in
    # fragmented MP4 has no edit list: its timeline starts at 0; MKV keeps the first PTS
    shift = times_in[0] if suffix == ".mp4" else 0.0
    assert times_out == pytest.approx([t - shift for t in times_in], abs=1e-3)
    # same length; Matroska counts its duration from 0, so it includes the start offset
    assert dur_out == pytest.approx(dur_in + (times_in[0] if suffix == ".mkv" else 0.0), abs=0.02)


def test_classic_mp4_keeps_the_first_pts(clips: dict[str, Path], tmp_path: Path) -> None:
    source = open_source(str(clips["offset"]))
    out = tmp_path / "classic.mp4"
    with FileSink(out, fps=10, fragmented=False) as sink:
        for frame in source:
            sink.write(frame)
    assert read_video(out)[0] == pytest.approx(read_video(clips["offset"])[0], abs=1e-3)


def test_side_by_side_is_before_then_after(clips: dict[str, Path], tmp_path: Path) -> None:
    source = open_source(str(clips["small"]))
    out = tmp_path / "sbs.mp4"
    with open_sink(str(out), fps=10, side_by_side=True) as sink:
        for frame in source:
            sink.write(replace(frame, original=frame.image, image=np.zeros_like(frame.image)))
    with av.open(str(out)) as c:
        img = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    assert img.shape == (64, 192, 3)
    assert img[:, 96:].mean() < 8 < img[:, :96].mean()  # right half is the (black) "after"


def test_odd_sizes_are_padded_to_even(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    _copy(clips["odd"], out)
    times, size, _ = read_video(out)
    assert size == (76, 52) and len(times) == 6


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_survives_sigkill(suffix: str, clips: dict[str, Path], tmp_path: Path) -> None:
    """A killed writer leaves a file that decodes up to its last fragment (cluster in MKV, which
    stayed in FFmpeg's buffer: 0 bytes after 9 s of a `streamer run` killed)."""
    out = tmp_path / f"killed{suffix}"
    code = (
        "import sys\n"
        "from streamer.config import EncoderConfig\n"
        "from streamer.sinks.file import FileSink\n"
        "from streamer.sources import open_source\n"
        f"src = open_source({str(clips['small'])!r}, loop=True)\n"
        f"sink = FileSink({str(out)!r}, fps=10, encoder=EncoderConfig(keyframe_s=0.2, preset='ultrafast'))\n"
        "for i, f in enumerate(src):\n"
        "    sink.write(f)\n"
        "    if i == 60: print('written', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    times, size, _ = read_video(out)
    assert len(times) >= 50 and size == (96, 64)
    assert all(b > a for a, b in zip(times, times[1:]))



def test_a_misspelt_sink_kind_gets_a_hint() -> None:
    from streamer.sinks import open_sink

    with pytest.raises(ConfigError, match="sink 'viewer': did you mean 'view'"):
        open_sink("viewer")
    with pytest.raises(ConfigError, match="sink 'out/cam': a sink is a .mp4/.mkv path"):
        open_sink("out/cam")

def test_a_close_that_fails_otherwise_than_by_ctrl_c_still_finishes_the_file(clips: dict[str, Path],
                                                                            tmp_path: Path, monkeypatch) -> None:
    """Only Ctrl-C leaves the file open (to resume); any other failure in the flush used to leave
    the container open and the file without its end."""
    source = open_source(str(clips["small"]))
    sink = FileSink(tmp_path / "out.mp4", fps=source.info.fps, fragmented=False)  # unplayable unfinished
    for frame in source:
        sink.write(frame)

    def broken_flush() -> None:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(sink._video, "flush", broken_flush)
    with pytest.raises(RuntimeError, match="encoder bug"):
        sink.close()
    assert sink._closed and sink._container is None
    assert len(read_video(tmp_path / "out.mp4")[0]) > 0  # the end is written: frames read back


def test_unwritable_destination_is_a_sink_error(clips: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match=r"file/sub/out\.mp4: .*file is a file, not a folder"):
        FileSink(blocker / "sub" / "out.mp4")
    with pytest.raises(SinkError, match="unknown video suffix '.avi'"):
        FileSink(tmp_path / "out.avi")


def test_open_sink_dispatch() -> None:
    assert isinstance(open_sink("null"), NullSink)
    with pytest.raises(ConfigError, match="unsupported scheme"):
        open_sink("ftp://host/x.mp4")


def test_encoder_settings_reach_the_stream(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "gop.mp4"
    _copy(clips["small"], out, encoder=EncoderConfig(keyframe_s=0.5))
    with av.open(str(out)) as c:
        keys = [i for i, p in enumerate(p for p in c.demux(video=0) if p.size) if p.is_keyframe]
    gaps = [b - a for a, b in zip(keys, keys[1:])]
    assert keys[0] == 0 and len(keys) >= 3 and max(gaps) <= 5  # 0.5 s at 10 fps (scene cuts add more)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (a folder that takes no files)")
def test_a_folder_that_takes_no_files_is_refused_when_the_sink_opens(tmp_path: Path) -> None:
    """Root passes permission checks, so /proc (no new files, for anyone) stands in for a
    read-only mount: refused at once, not at the first frame after the model and camera opened."""
    with pytest.raises(SinkError, match=r"/proc/out\.mp4: cannot write to the folder /proc \("):
        FileSink(Path("/proc/out.mp4"))
    FileSink(tmp_path / "ok.mp4")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone again


def test_run_keeps_a_files_sound_up_to_its_last_frame(clips: dict[str, Path], fast_weights: Path,
                                                      tmp_path: Path) -> None:
    """`run` dropped the audio `restore` keeps; with --max-frames the sound stops with the picture."""
    import streamer

    def audio(path: Path) -> tuple[int, float]:
        """(packets, end in seconds) of the first audio stream."""
        with av.open(str(path)) as c:
            packets = [p for p in c.demux(c.streams.audio[0]) if p.size]
            return len(packets), max(float((p.pts + p.duration) * p.time_base) for p in packets)

    base = {"source": str(clips["audio"]), "model": {"name": str(fast_weights), "arch": "fast"},
            "backend": {"threads": 1}}
    streamer.run(base | {"sinks": [str(tmp_path / "all.mp4")]})
    streamer.run(base | {"sinks": [str(tmp_path / "five.mp4")], "max_frames": 5})
    assert audio(tmp_path / "all.mp4")[0] == audio(clips["audio"])[0]  # every packet, copied
    # 5 frames at 10 fps + the 0.5 s tail + up to two 64-ms AAC packets (one partly past, priming): not the 2 s
    assert audio(tmp_path / "five.mp4")[1] <= 0.4 + 0.5 + 0.13 < audio(clips["audio"])[1] - 0.8


def test_sound_the_output_cannot_hold_is_left_out_with_a_warning(fast_weights: Path, tmp_path: Path,
                                                                 caplog) -> None:
    """An IP camera's AVI with G.711 (pcm_mulaw) sound: .mp4 cannot hold it; the picture is still
    cleaned (copying the sound raised a ValueError traceback)."""
    import streamer

    clip = tmp_path / "cam.avi"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("mjpeg", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuvj420p"
        sound = out.add_stream("pcm_mulaw", rate=8000)
        sound.layout = "mono"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            pcm = np.zeros((1, 800), np.int16)
            samples = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            samples.sample_rate, samples.pts = 8000, i * 800
            out.mux(sound.encode(samples))
        out.mux(video.encode())
        out.mux(sound.encode())
    with caplog.at_level("WARNING", logger="streamer.sinks.file"):
        result = streamer.run({"source": str(clip), "sinks": [str(tmp_path / "out.mp4")],
                               "model": {"name": str(fast_weights), "arch": "fast"}, "backend": {"threads": 1}})
    assert result.frames_out == 5 and len(read_video(tmp_path / "out.mp4")[0]) == 5
    assert "sound not copied (pcm_mulaw" in caplog.text
