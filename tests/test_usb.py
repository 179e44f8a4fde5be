"""USB cameras through V4L2: tested where a /dev/video* exists, skipped with a reason otherwise."""

from __future__ import annotations

import glob

import pytest

from streamer.config import ReconnectConfig
from streamer.errors import SourceError
from streamer.sources import open_source
from streamer.sources.usb import UsbSource

DEVICES = sorted(glob.glob("/dev/video*"))


def test_usb_spec_picks_v4l2() -> None:
    src = open_source("/dev/video0", size="1280x720", fps=30, input_format="mjpeg")
    assert isinstance(src, UsbSource) and src.live
    assert src.options == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}


@pytest.mark.skipif(bool(DEVICES), reason="a camera is present; the missing-device path is for hosts without one")
def test_missing_device_is_a_one_line_error() -> None:
    with pytest.raises(SourceError, match="/dev/video0: cannot open USB camera"):
        next(iter(open_source("/dev/video0", timeout_s=1.0, reconnect=ReconnectConfig())))


@pytest.mark.skipif(not DEVICES, reason="no /dev/video* device on this host")
def test_usb_camera_delivers_frames() -> None:
    src = open_source(DEVICES[0], timeout_s=5.0)
    frames = []
    for frame in src:
        frames.append(frame)
        if len(frames) == 5:
            src.close()
    assert len(frames) == 5 and frames[0].image.ndim == 3
    assert all(b.pts_s > a.pts_s for a, b in zip(frames, frames[1:]))
