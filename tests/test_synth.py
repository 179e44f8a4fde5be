"""Corruption synthesis: seeded determinism, value range, masks, heavy > default; `streamer synth`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamer.cli import main
from streamer.errors import ConfigError
from streamer.synth import CORRUPTIONS, DirtParams, corrupt
from streamer.synth.pairs import corrupt_file_image


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """A smooth gradient with some texture: a stand-in photo, 96×128."""
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    rng = np.random.default_rng(5)
    img = np.stack([xx / 128, yy / 96, 0.5 + 0.3 * np.sin(xx / 7)], axis=-1)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_same_seed_same_output_other_seed_differs(clean: np.ndarray, kind: str) -> None:
    a, ma = corrupt(clean, kind, np.random.default_rng(7))
    b, mb = corrupt(clean, kind, np.random.default_rng(7))
    c, _ = corrupt(clean, kind, np.random.default_rng(8))
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("heavy", [False, True])
def test_range_dtype_and_mask(clean: np.ndarray, kind: str, heavy: bool) -> None:
    out, mask = corrupt(clean, kind, np.random.default_rng(3), heavy=heavy)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert mask.shape == (*clean.shape[:2], 1)
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    changed = np.abs(out - clean).max(axis=2) > 0.02
    if changed.any():  # where the image changed, the mask says so
        assert float(mask[..., 0][changed].mean()) > float(mask[..., 0][~changed].mean())


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_heavy_corrupts_more_than_default(clean: np.ndarray, kind: str) -> None:
    def damage(heavy: bool) -> float:
        return float(np.mean([np.abs(corrupt(clean, kind, np.random.default_rng(s), heavy=heavy)[0]
                                     - clean).mean() for s in range(6)]))

    assert damage(True) > damage(False)


def test_dirt_ranges_replace_the_benchmarks(clean: np.ndarray) -> None:
    """A training ablation's ranges reach the synthesis, and with the same draws: no haze leaves
    less of a veil; all opacities zero leave the image as it was."""
    def dirty(**ranges):
        return corrupt(clean, "dirt", np.random.default_rng(3), dirt=DirtParams(**ranges))[0]

    off = (0.0, 0.0)
    assert np.array_equal(dirty(spot_opacity=off, opacity=off, haze=off, flecks=off), clean)
    assert np.abs(dirty(haze=off) - clean).mean() < np.abs(dirty(haze=(0.2, 0.2)) - clean).mean()


def test_unknown_corruption_is_a_config_error(clean: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="unknown corruption 'snow'"):
        corrupt(clean, "snow", np.random.default_rng(0))


def test_synth_command_writes_triples_equal_to_eval_inputs(clean: np.ndarray, tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(src / f"{name}.png"), cv2.cvtColor((clean * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main(["synth", str(src), "-o", str(out), "--corruption", "dirt", "--seed", "4"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_clean.png", "a_dirt.png", "a_dirt_mask.png",
                     "b_clean.png", "b_dirt.png", "b_dirt_mask.png"]
    read = lambda p: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)  # noqa: E731
    clean8 = read(out / "a_clean.png").astype(np.float32) / 255
    expected, _ = corrupt_file_image(clean8, "a", "dirt", 4)
    got = read(out / "a_dirt.png").astype(np.int16)
    assert np.abs(got - np.round(expected * 255).astype(np.int16)).max() <= 1
    # seeded per file name: different files get different dirt
    assert not np.array_equal(read(out / "a_dirt_mask.png"), read(out / "b_dirt_mask.png"))


def test_dirt_spots_scale_with_the_frame_not_the_crop() -> None:
    """The same 256-px window shows fewer, bigger spots when it is part of a bigger frame (a
    crop of a 4K frame holds less of the lens); the stained fraction stays the same."""
    from dataclasses import replace

    from streamer.synth.dirt import DirtParams, dirt_layers

    spots_only = replace(DirtParams(), spots=(150.0, 150.0), coverage=(0.0, 0.0), haze=(0.0, 0.0),
                         flecks=(0.0, 0.0), defocus_px=(0.0, 0.0))

    def measure(frame_px: float) -> tuple[float, float]:
        stained, spots = [], []
        for s in range(8):
            alpha, _ = dirt_layers(np.random.default_rng(s), (256, 256), spots_only, frame_px)
            mask = (alpha[..., 0] > 0.05).astype(np.uint8)
            stained.append(mask.mean())
            spots.append(cv2.connectedComponents(mask)[0] - 1)
        return float(np.mean(stained)), float(np.mean(spots))

    frac_small, n_small = measure(640.0)
    frac_big, n_big = measure(2560.0)
    assert n_small > 8 * n_big  # 16× the spots per pixel at 640 px; some touch and merge
    assert 0.5 < frac_big / frac_small < 2.0
