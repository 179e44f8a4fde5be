from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from streamer.errors import ConfigError
from streamer.preprocess.color import from_batch, to_batch, to_rgb8
from streamer.preprocess.resize import parse_size, resize
from streamer.preprocess.tiles import Tiler, pad_to_multiple, run_padded


def _conv_net() -> nn.Module:
    """Fully convolutional, receptive-field radius 3 (three 3×3 convs)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid()).eval()


def _as_fn(net: nn.Module):
    calls = []

    @torch.inference_mode()
    def fn(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return net(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    return fn, calls


@pytest.mark.parametrize("h, w, tile, overlap, multiple", [
    (150, 203, 64, 16, 1),
    (96, 256, 64, 32, 8),   # multiple of 8, wide
    (200, 120, 80, 24, 8),  # last tiles flush with the edge, overlap larger than asked
    (40, 300, 64, 16, 1),   # one row of tiles
])
def test_tiled_equals_untiled(h: int, w: int, tile: int, overlap: int, multiple: int) -> None:
    fn, calls = _as_fn(_conv_net())
    x = np.random.default_rng(0).random((2, 3, h, w), dtype=np.float32)
    whole = fn(x)
    tiled = Tiler(tile, overlap, multiple, max_batch=3)(fn, x)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() < 1e-4
    assert len(calls) > 2 and all(c[-1] <= tile and c[-2] <= tile for c in calls[1:])
    assert all(c[-1] % multiple == 0 and c[-2] % multiple == 0 for c in calls[1:])


@pytest.mark.parametrize("h, w", [(150, 203), (200, 130), (64, 250)])
def test_even_tiles_run_fewer_pixels_with_the_same_result(h: int, w: int) -> None:
    """Cleaner's auto tiling: equal tiles no bigger than asked, as many as fixed ones need, one
    per call; the blend still matches the untiled output."""
    x = np.random.default_rng(2).random((1, 3, h, w), dtype=np.float32)
    fixed_fn, fixed_calls = _as_fn(_conv_net())
    even_fn, even_calls = _as_fn(_conv_net())
    Tiler(112, 16, 8)(fixed_fn, x)
    even = Tiler(112, 16, 8, max_batch=1, even=True)(even_fn, x)
    assert np.abs(even - fixed_fn(x)).max() < 1e-4
    assert len(even_calls) == sum(c[0] for c in fixed_calls[:-1]) and all(c[0] == 1 for c in even_calls)
    pixels = [sum(c[0] * c[-1] * c[-2] for c in calls) for calls in (fixed_calls[:-1], even_calls)]
    assert pixels[1] < pixels[0] and all(c[-1] % 8 == 0 and c[-2] % 8 == 0 for c in even_calls)


def test_tiles_without_blend_margin_would_show_seams() -> None:
    """The check above can fail: a too-small overlap for the receptive field leaves seams."""
    fn, _ = _as_fn(_conv_net())
    x = np.random.default_rng(1).random((1, 3, 128, 128), dtype=np.float32)
    assert np.abs(Tiler(48, 4)(fn, x) - fn(x)).max() > 1e-4


def test_pad_to_multiple_and_crop_back() -> None:
    x = np.random.default_rng(2).random((1, 3, 50, 61), dtype=np.float32)
    padded = pad_to_multiple(x, 8)
    assert padded.shape == (1, 3, 56, 64)
    assert np.array_equal(padded[..., :50, :61], x)
    seen = []
    out = run_padded(lambda b: seen.append(b.shape) or b * 2, x, 8)
    assert seen == [(1, 3, 56, 64)] and out.shape == x.shape and np.allclose(out, x * 2)


def test_colour_round_trip_is_exact() -> None:
    img = np.random.default_rng(3).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    batch = to_batch([img, img[::-1].copy()])
    assert batch.shape == (2, 3, 17, 23) and batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    back = from_batch(batch)
    assert np.array_equal(back[0], img) and back[0].flags.c_contiguous


def test_to_rgb8_handles_gray_alpha_and_16_bit() -> None:
    gray = np.full((4, 5), 128, np.uint8)
    assert to_rgb8(gray).shape == (4, 5, 3)
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 0] = 255  # blue in OpenCV order
    assert to_rgb8(bgra)[0, 0].tolist() == [0, 0, 255]
    deep = np.full((4, 5, 3), 65535, np.uint16)
    assert to_rgb8(deep).max() == 255 and to_rgb8(deep).dtype == np.uint8


def test_resize_and_size_parsing() -> None:
    assert parse_size("1280x720") == (1280, 720)
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_size("720p")
    img = np.zeros((60, 80, 3), np.uint8)
    assert resize(img, (40, 30)).shape == (30, 40, 3)
    assert resize(img, (80, 60)) is img
