"""A short real training run lowers the error; --resume continues the step count."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from streamer.config import TrainConfig
from safetensors.torch import load_file

from streamer.errors import ConfigError, WeightsError
from streamer.models.drn import DRN
from streamer.models.eigen2013 import Eigen2013
from streamer.models.fast import FastNet
from streamer.models.weights import load_weights, save_weights
from streamer.train.data import (MIN_CLEAN_VAR, PatchMix, PatchStream, is_validation, list_images, one_opencv_thread,
                                 read_rgb)
from streamer.train.negatives import (
    GRID,
    HardNegatives,
    bright_score,
    paste_sign,
    score_table,
    speck_score,
    text_panel_score,
)
from streamer.train.loop import _lr_at, train, val_score

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four training photos and one validation photo, downscaled to 160×213 (speed)."""
    if not DATA.is_dir():
        pytest.skip(f"training photos not found at {DATA}")
    files = list_images(DATA)
    picked = [p for p in files if not is_validation(p)][:4] + [p for p in files if is_validation(p)][:1]
    out = tmp_path_factory.mktemp("photos")
    for p in picked:
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        s = 160 / min(h, w)
        cv2.imwrite(str(out / p.name), cv2.resize(img, (round(w * s), round(h * s)),
                                                   interpolation=cv2.INTER_AREA))
    return out


def _cfg(photos: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="drn", data=photos, out=out, seed=0, patch=32, batch=4, steps=60,
                optimizer="adamw", lr=2e-3, warmup=5, loss="l1", mix_dirt=0.6,
                mix_raindrop=0.2, mix_streaks=0.2, workers=0, threads=1, val_every=30,
                val_crop=64, val_kinds=("streaks", "clean"))
    return TrainConfig.model_validate(base | kw)


def _fixed_batch(photos: Path) -> tuple[torch.Tensor, torch.Tensor]:
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]
    stream = PatchStream(imgs, 32, seed=99, mix=PatchMix(0.6, 0.2, 0.2))
    rng = np.random.default_rng(99)
    pairs = [stream.sample(rng) for _ in range(24)]
    return torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])


def test_patches_per_region_cuts_several_patches_of_one_synthesis(photos: Path) -> None:
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]
    one = PatchStream(imgs, 32, seed=5, mix=PatchMix(1.0, 0.0, 0.0))
    four = PatchStream(imgs, 32, seed=5, mix=PatchMix(1.0, 0.0, 0.0), reuse=4)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    first, group = one.samples(rng_a), four.samples(rng_b)
    assert len(first) == 1 and 1 <= len(group) <= 4
    # the first patch of a group is the patch reuse=1 gives: same region, same synthesis
    assert torch.equal(first[0][0], group[0][0]) and torch.equal(first[0][1], group[0][1])
    assert all(d.shape == c.shape == (3, 32, 32) for d, c in group)
    if len(group) > 1:
        assert not torch.equal(group[0][1], group[1][1])  # other windows of that region


def _sign(h: int = 64, w: int = 64) -> np.ndarray:
    img = np.full((h, w, 3), 0.95, np.float32)  # white panel
    img[20:44, 10:14] = img[20:24, 10:30] = img[40:44, 10:30] = 0.05  # dark letter strokes
    return img


def test_hard_negatives_prefer_text_panels_over_sky_and_plain_white() -> None:
    sky = np.zeros((64, 64, 3), np.float32) + np.array([0.45, 0.65, 0.95], np.float32)
    sky[30:34] = 0.1  # a dark wire across blue sky: edges, but no white panel
    white = np.full((64, 64, 3), 0.95, np.float32)
    assert text_panel_score(_sign()) > 0.2
    assert text_panel_score(sky) == 0.0 and text_panel_score(white) == 0.0
    rng = np.random.default_rng(0)
    mined = HardNegatives([sky, white, _sign(96, 96)], 64, "panels", min_var=MIN_CLEAN_VAR)
    picks = [mined.draw(rng) for _ in range(10)]
    assert sum(text_panel_score(p) > 0.2 for p in picks) >= 8  # 32 tries find the sign


def _pebbles(seed: int = 0, spots: int = 40) -> np.ndarray:
    """Smooth green grass with small white pebbles (the E33 scene the net erased)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((96, 96, 3), np.float32) + np.array([0.3, 0.5, 0.2], np.float32)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    for y, x in rng.integers(4, 92, (spots, 2)):
        img[y - 1:y + 2, x - 1:x + 2] = 0.9
    return img


def test_speck_negatives_prefer_isolated_spots_over_plain_and_busy_texture() -> None:
    """``specks`` (E33): many small isolated spots score high; the same grass without them and
    a busy texture (where every pixel is a "spot") score low, so mining picks the pebbles."""
    plain = _pebbles(spots=0)
    busy = np.random.default_rng(1).random((96, 96, 3), dtype=np.float32)
    assert speck_score(_pebbles()) > 10 * max(speck_score(plain), speck_score(busy), 0.1)
    rng = np.random.default_rng(0)
    mined = HardNegatives([plain, busy, _pebbles()], 64, "specks", min_var=1e-4)
    picks = [mined.draw(rng) for _ in range(10)]
    assert sum(speck_score(p) > 5 for p in picks) >= 8


def test_bright_negatives_prefer_near_white_windows() -> None:
    """``bright`` (E35): the share of near-white pixels; a white body beside green grass scores
    by its area, blue sky and grass score zero, and mining picks the white window."""
    grass = _pebbles(spots=0)
    sky = np.zeros((96, 96, 3), np.float32) + np.array([0.45, 0.65, 0.95], np.float32)
    body = grass.copy()
    body[:, :64] = 0.92 + np.random.default_rng(2).normal(0, 0.01, (96, 64, 3)).astype(np.float32)
    assert bright_score(grass) == bright_score(sky) == 0.0
    assert abs(bright_score(body) - 64 / 96) < 0.02
    rng = np.random.default_rng(0)
    picks = [HardNegatives([grass, sky, body], 64, "bright", min_var=1e-4).draw(rng) for _ in range(10)]
    assert sum(bright_score(p) > 0.3 for p in picks) >= 8


def test_score_tables_match_the_per_window_scores() -> None:
    """The tables ``HardNegatives`` draws from are the per-window functions computed once per
    photo: equal for panels and bright, and for specks wherever no spot is cut by the window's
    edge; flat windows are −1 (the variance floor)."""
    scene = np.concatenate([_pebbles(4), _sign(96, 96), np.full((96, 96, 3), 0.9, np.float32)], axis=1)
    scene[:, 200:] += np.random.default_rng(5).normal(0, 0.01, (96, 88, 3)).astype(np.float32)
    for kind, fn in (("panels", text_panel_score), ("bright", bright_score), ("specks", speck_score)):
        table = score_table(scene, 64, kind, min_var=1e-4)
        assert table.shape == ((96 - 64) // GRID + 1, (288 - 64) // GRID + 1)
        for y, x in ((0, 0), (4, 100), (32, 120), (16, 224), (0, 160)):
            window = scene[y:y + 64, x:x + 64]
            want = fn(window) if window.var() >= 1e-4 else -1.0
            if kind == "specks" and x > 0:
                continue  # windows over the pebbles' edge cut spots the table counts whole
            assert table[y // GRID, x // GRID] == pytest.approx(want, abs=1e-5), (kind, y, x)
    flat = np.full((80, 80, 3), 0.5, np.float32)
    assert (score_table(flat, 64, "bright", min_var=1e-4) == -1).all()
    with pytest.raises(ConfigError, match="unknown hard-negative kind 'glare'"):
        score_table(scene, 64, "glare", min_var=1e-4)
    with pytest.raises(ConfigError, match="at least 128 px"):
        HardNegatives([scene], 128, "panels", min_var=1e-4)


def test_pasted_signs_are_seeded_bright_panels_with_marks() -> None:
    scene = np.random.default_rng(3).random((200, 240, 3), dtype=np.float32) * 0.5
    before = scene.copy()
    a = paste_sign(scene, np.random.default_rng(7))
    b = paste_sign(scene, np.random.default_rng(7))
    assert np.array_equal(scene, before)  # the photo itself is not drawn on
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    changed = np.any(a != scene, axis=2)
    assert 0.03 < changed.mean() < 0.9
    ys, xs = np.nonzero(changed)
    panel = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    y = panel.mean(axis=2)
    assert np.median(y) > 0.5 > scene.mean() - 0.2  # a bright panel on a darker scene
    assert (np.abs(y - np.median(y)) > 0.2).mean() > 0.01  # with glyphs (or a border) on it


def test_clean_hard_share_of_a_stream_is_clean_pairs(photos: Path) -> None:
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]
    stream = PatchStream(imgs, 32, seed=1, mix=PatchMix(1.0, 0.0, 0.0), clean_hard=0.5)
    rng = np.random.default_rng(1)
    pairs = [stream.sample(rng) for _ in range(40)]
    clean = sum(torch.equal(d, c) for d, c in pairs)
    assert 8 <= clean <= 32  # ~half, although the mix itself has no clean share


def _mse(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    with torch.no_grad():
        return float(((net.eval()(batch[0]) - batch[1]) ** 2).mean())


def test_short_run_lowers_the_loss(photos: Path, tmp_path: Path) -> None:
    """The paper's net from the paper's start (output ≈ 0) with the paper's SGD: a few steps
    must already pull the error down on patches it never trained on."""
    torch.set_num_threads(1)
    batch = _fixed_batch(photos)
    torch.manual_seed(0)
    before = _mse(Eigen2013(init="paper"), batch)  # the same init train() starts from (seed 0)
    cfg = _cfg(photos, tmp_path / "run", model="eigen2013-dirt", init="paper", optimizer="sgd-paper",
               lr=0.05, loss="mse", clip_grad=0.0, steps=20, val_every=20, val_kinds=("dirt",))
    card = train(cfg)
    after = _mse(load_weights(Eigen2013(), tmp_path / "run" / "final.safetensors"), batch)
    assert after < before * 0.8
    assert card["steps"] == 20 and card["config"]["optimizer"] == "sgd-paper"
    assert set(card["validation"]) == {"dirt"}
    saved = json.loads((tmp_path / "run" / "card.json").read_text())
    assert saved["data"]["train_images"] == 4 and saved["data"]["val_images"] == 1


def test_resume_continues_the_step_count(photos: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train(_cfg(photos, out, steps=6, val_every=3))
    first = json.loads((out / "state.json").read_text())
    assert first["step"] == 6
    shutil.copy(out / "last.safetensors", tmp_path / "at6.safetensors")
    shown: list[tuple[int, float]] = []
    card = train(_cfg(photos, out, steps=9, val_every=3), resume=True,
                 progress=lambda step, info: shown.append((step, info["loss"])))
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 9 and card["steps"] == 9
    # the smoothed loss starts from the resumed run's first loss, not from 0 (L1 losses are > 0.01)
    assert shown[0][0] == 7 and shown[0][1] > 0.01 and state["history"][-1]["loss"] > 0.5 * shown[0][1]
    assert [h["step"] for h in state["history"]] == [3, 6, 9]
    moved = load_weights(DRN(), out / "last.safetensors").state_dict()
    start = load_weights(DRN(), tmp_path / "at6.safetensors").state_dict()
    assert any(not torch.equal(moved[k], start[k]) for k in start)
    # the best checkpoint survives the resume: its step is the best-scoring validation so far
    scores = {h["step"]: val_score(h["val"]) for h in state["history"]}
    assert state["best"]["step"] == max(scores, key=scores.get)
    assert card["best_validation"] == state["best"]
    assert load_weights(DRN(), out / "best.safetensors") is not None
    # the card keeps the first run's command and lists the resume with what it changed
    assert [r["at_step"] for r in card["resumes"]] == [6] and card["resumes"][0]["changed"] == {"steps": [6, 9]}
    assert card["git_commit"] != "unknown"  # streamer's own checkout, whatever the working folder
    # resuming a finished run is one line, not "0 steps; validation gain: n/a" and a rewritten final file
    final = (out / "final.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"already trained to step 9 \(steps: 9\); give --steps above 9"):
        train(_cfg(photos, out, steps=9, val_every=3), resume=True)
    assert (out / "final.safetensors").read_bytes() == final
    # ... unless it stopped between its last checkpoint and final.safetensors: the resume writes it
    (out / "final.safetensors").unlink()
    train(_cfg(photos, out, steps=9, val_every=3), resume=True)
    assert load_weights(DRN(), out / "final.safetensors") is not None


def test_resume_with_another_recipe_is_warned_and_recorded(photos: Path, tmp_path: Path, caplog) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train(_cfg(photos, out, steps=3, val_every=3))
    with caplog.at_level("WARNING", logger="streamer.train.loop"):
        card = train(_cfg(photos, out, steps=5, val_every=3, lr=0.01), resume=True)
    assert "with a different recipe (lr: " in caplog.text and "steps" not in caplog.text.split("recipe")[1]
    assert card["resumes"][0]["changed"]["lr"][1] == 0.01
    # an option the old card lacks (added to streamer since) is not a change of recipe
    saved = json.loads((out / "card.json").read_text())
    del saved["config"]["clean_ohem"]
    (out / "card.json").write_text(json.dumps(saved))
    caplog.clear()
    with caplog.at_level("WARNING", logger="streamer.train.loop"):
        card = train(_cfg(photos, out, steps=6, val_every=3, lr=0.01), resume=True)
    assert "different recipe" not in caplog.text and "clean_ohem" not in card["resumes"][-1]["changed"]


def test_cuda_asked_without_cuda_is_one_line(photos: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device: cuda, but this torch sees no CUDA GPU.*use device: auto"):
        train(_cfg(photos, tmp_path / "run", steps=1, device="cuda"))


def test_val_score_prices_a_harmed_clean_photo() -> None:
    ok = {"dirt": {"gain_db": 2.0}, "clean": {"worst_output_db": 45.0}}
    harmful = {"dirt": {"gain_db": 2.5}, "clean": {"worst_output_db": 35.0}}
    assert val_score(ok) == 2.0 and val_score(harmful) == -2.5


def test_max_minutes_counts_this_invocation_only(photos: Path, tmp_path: Path) -> None:
    """A resumed run gets its full time budget, however long earlier runs took."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train(_cfg(photos, out, steps=3, val_every=3))
    state = json.loads((out / "state.json").read_text())
    state["wall_s"] = 10 * 3600.0  # earlier runs: ten hours in all
    (out / "state.json").write_text(json.dumps(state))
    card = train(_cfg(photos, out, steps=6, val_every=3, max_minutes=30.0), resume=True)
    assert card["steps"] == 6  # not stopped after one step by the earlier hours
    assert card["wall_time_s"] >= 10 * 3600.0  # the card still sums all runs


def test_train_command_exports_weights_and_card(photos: Path, tmp_path: Path, capsys) -> None:
    from streamer.cli import main

    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: drn\ndata: {photos}\nout: {tmp_path / 'run'}\npatch: 32\nbatch: 2\n"
                   "steps: 50\nworkers: 0\nthreads: 1\nval_every: 100\nval_crop: 32\n"
                   "val_kinds: [clean]\n")
    ship = tmp_path / "ship"
    assert main(["train", "--config", str(cfg), "--steps", "2", "--export-weights", str(ship),
                 "--export-name", "drn-test", "--card-note", "smoke test"]) == 0
    out = capsys.readouterr().out  # clean frames: their PSNR, as logged, not a gain over ∞
    assert re.search(r"validation gain: clean [\d.]+ dB \(worst [\d.]+\);", out), out
    card = json.loads((ship / "drn-test.card.json").read_text())
    assert card["steps"] == 2 and card["model"] == "drn" and card["note"] == "smoke test"
    load_weights(DRN(), ship / "drn-test.safetensors")


def test_weights_starts_a_fine_tune_from_a_file(photos: Path, tmp_path: Path) -> None:
    """`weights:` loads a shipped file before step 0 (fresh optimizer); the card names it."""
    torch.set_num_threads(1)
    train(_cfg(photos, tmp_path / "a", steps=4, val_every=4))
    start = tmp_path / "a" / "final.safetensors"
    card = train(_cfg(photos, tmp_path / "b", steps=1, val_every=1, lr=1e-12, warmup=0, weights=start))
    tuned = load_weights(DRN(), tmp_path / "b" / "final.safetensors").state_dict()
    base = load_weights(DRN(), start).state_dict()
    assert all(torch.allclose(tuned[k], base[k], atol=1e-6) for k in base)  # lr ~0: still the start
    assert card["fine_tuned_from"]["path"] == str(start) and len(card["fine_tuned_from"]["sha256"]) == 64
    start.unlink()  # resuming the fine-tune keeps its record; the start file is not read again
    resumed = train(_cfg(photos, tmp_path / "b", steps=2, val_every=1, lr=1e-12, warmup=0, weights=start),
                    resume=True)
    assert resumed["steps"] == 2 and resumed["fine_tuned_from"] == card["fine_tuned_from"]
    with pytest.raises(WeightsError, match="no-such.safetensors.*not found"):
        train(_cfg(photos, tmp_path / "c", steps=1, weights=tmp_path / "no-such.safetensors"))


def test_fine_tune_keeps_the_architecture_of_its_weights(photos: Path, tmp_path: Path) -> None:
    """The README's fine-tune (a config without `model_kwargs`, `--weights` the shipped `fast`,
    which has `glob`) builds the file's architecture, and what it writes says what it is:
    `--model runs/mine/best.safetensors` needs no `--arch`."""
    from streamer.models import get_spec
    from streamer.models.weights import build_with_weights, spec_for_weights, weights_arch

    torch.set_num_threads(1)
    start = save_weights(FastNet(glob=True), tmp_path / "shipped.safetensors", {"arch": {"glob": True}})
    kw = dict(model="fast", steps=2, val_every=2, loss="log-mse", val_kinds=("dirt", "clean"))
    train(_cfg(photos, tmp_path / "mine", weights=start, **kw))
    out = tmp_path / "mine"
    for name in ("best", "last", "final"):
        assert weights_arch(out / f"{name}.safetensors") == {"glob": True}
        assert spec_for_weights(out / f"{name}.safetensors") is get_spec("fast")
    assert build_with_weights(get_spec("fast"), out / "best.safetensors").glob is not None
    assert train(_cfg(photos, out, weights=start, **(kw | {"steps": 3})), resume=True)["steps"] == 3
    with pytest.raises(WeightsError, match="another architecture"):  # an explicit option still wins
        train(_cfg(photos, tmp_path / "plain", weights=start, model_kwargs={"glob": False}, **kw))
    with pytest.raises(ConfigError, match="does not say which model.*--arch"):
        spec_for_weights(save_weights(FastNet(), tmp_path / "step7.safetensors"))


def test_validation_reports_the_worst_clean_photo() -> None:
    """A mean can hide one harmed photo; validation keeps the worst and logs it for clean frames."""
    from streamer.train.loop import summary, validate

    rng = np.random.default_rng(0)
    imgs = [rng.uniform(0, 1, (16, 16, 3)).astype(np.float32) for _ in range(3)]
    val = [("clean", im, im) for im in imgs]

    class Darken(torch.nn.Module):  # harms only the second photo
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0.5 if float(x.mean()) == float(torch.from_numpy(imgs[1]).mean()) else x

    m = validate(Darken(), val, torch.device("cpu"))["clean"]
    assert m["worst_output_db"] < 15  # the darkened photo
    assert m["output_db"] > 60  # the mean of two perfect (100 dB) photos and it looks fine
    assert "worst" in str(summary({"clean": m}))


def test_raindrop_patches_are_cut_over_a_drop(photos: Path) -> None:
    """A region holds about one drop; a random window of it would mostly be a clean patch."""
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]
    stream = PatchStream(imgs, 32, seed=3, mix=PatchMix(0.0, 1.0, 0.0), frame_px=(640, 1920))
    rng = np.random.default_rng(3)
    for _ in range(20):
        dirty, clean = stream.sample(rng)
        assert (dirty - clean).abs().amax() > 0.02  # every raindrop patch shows a drop


def test_mask_loss_reaches_the_trunk_and_ships_plain_weights(photos: Path, tmp_path: Path) -> None:
    """Same seed, same batches: with the corruption-map loss the net's own weights end elsewhere
    (the loss reaches the trunk); its head is saved beside the run, resumed, and not shipped."""
    from streamer.models.fast import FastNet
    from streamer.train import mask_head

    torch.set_num_threads(1)
    stream = PatchStream([read_rgb(p) for p in list_images(photos) if not is_validation(p)], 64, seed=4,
                         mix=PatchMix(0.5, 0.5, 0.0), with_mask=True)
    rng = np.random.default_rng(4)
    items = [stream.sample(rng) for _ in range(6)]
    assert all(len(t) == 3 and t[2].shape == (1, 64, 64) and 0 <= t[2].min() <= t[2].max() <= 1 for t in items)
    assert any(t[2].max() > 0.03 for t in items)

    def run(name: str, **kw) -> Path:
        cfg = _cfg(photos, tmp_path / name, model="fast", loss="log-mse", loss_eps=1e-4, patch=64,
                   steps=6, val_every=3, lr=1e-3, mix_dirt=0.5, mix_raindrop=0.5, mix_streaks=0.0,
                   val_kinds=("dirt",), **kw)
        train(cfg)
        return tmp_path / name

    plain, masked = run("plain"), run("masked", mask_loss=1.0)
    a = load_weights(FastNet(), plain / "final.safetensors").state_dict()
    b = load_weights(FastNet(), masked / "final.safetensors").state_dict()
    assert set(load_file(str(masked / "final.safetensors"))) == set(FastNet().state_dict())  # plain FastNet
    assert not torch.equal(a["enc1.0.weight"], b["enc1.0.weight"])
    assert not (plain / mask_head.FILE).exists() and (masked / mask_head.FILE).exists()
    saved = load_file(str(masked / mask_head.FILE))
    resumed = _cfg(photos, masked, model="fast", loss="log-mse", loss_eps=1e-4, patch=64, steps=9,
                   val_every=3, lr=1e-3, mix_dirt=0.5, mix_raindrop=0.5, mix_streaks=0.0,
                   val_kinds=("dirt",), mask_loss=1.0)
    train(resumed, resume=True)
    moved = load_file(str(masked / mask_head.FILE))
    assert not torch.equal(saved["conv.weight"], moved["conv.weight"])


def test_mask_loss_refuses_a_model_without_features(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mask_loss needs a model with features"):
        train(_cfg(photos, tmp_path / "run", mask_loss=0.5))


def test_drop_masks_only_for_drop_patches(photos: Path) -> None:
    """drop_loss targets: the drop mask on raindrop patches, zeros on dirt (its α is no drop)."""
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]
    rng = np.random.default_rng(5)
    dirt = PatchStream(imgs, 32, seed=5, mix=PatchMix(1.0, 0.0, 0.0), with_mask=True, mask_kinds=("raindrop",))
    drops = PatchStream(imgs, 32, seed=5, mix=PatchMix(0.0, 1.0, 0.0), with_mask=True, mask_kinds=("raindrop",))
    assert all(float(dirt.sample(rng)[2].max()) == 0.0 for _ in range(5))
    assert all(float(drops.sample(rng)[2].max()) > 0.03 for _ in range(5))


def test_drop_dirt_alpha_targets_only_near_opaque_dirt(photos: Path) -> None:
    """drop_dirt_alpha: on dirt patches the finder's target is α >= the threshold (0 or 1), on
    the same patches; without it dirt stays all negative."""
    imgs = [read_rgb(p) for p in list_images(photos) if not is_validation(p)]

    def draw(**kw: Any) -> list[tuple[torch.Tensor, ...]]:
        stream = PatchStream(imgs, 32, seed=5, mix=PatchMix(1.0, 0.0, 0.0), with_mask=True, **kw)
        rng = np.random.default_rng(5)
        return [stream.sample(rng) for _ in range(20)]

    alphas = draw()  # no mask_kinds: the mask is the dirt's α itself
    marked = draw(mask_kinds=("raindrop",), dirt_mask_alpha=0.3)
    for (dirty, _, alpha), (same, _, target) in zip(alphas, marked):
        assert torch.equal(dirty, same)  # the same seeds draw the same patches
        assert torch.equal(target, (alpha >= 0.3).float())
    assert any(float(t.max()) == 1.0 for *_, t in marked)
    assert all(float(t.max()) == 0.0 for *_, t in draw(mask_kinds=("raindrop",)))


def test_drop_finder_trains_alone_on_top_of_frozen_weights(photos: Path, tmp_path: Path) -> None:
    """train_only + drop_loss: warm start from a file without the drop finder; only it moves."""
    from streamer.models.fast import FastNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = save_weights(FastNet(), tmp_path / "plain.safetensors")  # no drops.* keys
    cfg = _cfg(photos, tmp_path / "run", model="fast", model_kwargs={"drops": True}, weights=start,
               train_only=["drops."], loss="none", drop_loss=1.0, patch=64, steps=4, val_every=4, lr=1e-3,
               mix_dirt=0.5, mix_raindrop=0.5, mix_streaks=0.0, val_kinds=("raindrop",))
    train(cfg)
    before = load_file(str(start))
    after = load_file(str(tmp_path / "run" / "final.safetensors"))
    assert set(after) == set(FastNet(drops=True).state_dict())
    assert all(torch.equal(before[k], after[k]) for k in before)  # the restorer is untouched
    fresh = FastNet(drops=True).state_dict()
    assert not torch.equal(after["drops.head.weight"], fresh["drops.head.weight"])


def test_drop_loss_needs_a_drop_finder(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="drop_loss needs a model with a drop finder"):
        train(_cfg(photos, tmp_path / "run", model="fast", drop_loss=1.0))
    with pytest.raises(ConfigError, match="train_only"):
        train(_cfg(photos, tmp_path / "run", model="fast", train_only=["nothing."]))
    with pytest.raises(ValueError, match="drop_dirt_alpha sets drop_loss' targets on dirt; it needs drop_loss"):
        _cfg(photos, tmp_path / "run", model="fast", drop_dirt_alpha=0.75)  # else silently ignored


def test_new_parts_start_fresh_and_everything_trains(photos: Path, tmp_path: Path) -> None:
    """new_parts: an architecture option added to older weights; unlike train_only nothing is frozen,
    and every weights file of the run records the option, so it loads as plain ``fast``."""
    from streamer.evaluate.restore import load_model
    from streamer.models.fast import FastNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = save_weights(FastNet(), tmp_path / "plain.safetensors")  # no prior.* keys
    kw = dict(model="fast", model_kwargs={"priors": True}, weights=start, loss="log-mse", patch=64,
              steps=3, val_every=3, lr=1e-3, val_kinds=("dirt",))
    with pytest.raises(WeightsError, match="missing 2 keys"):
        train(_cfg(photos, tmp_path / "refused", **kw))
    train(_cfg(photos, tmp_path / "run", new_parts=["prior."], **kw))
    before = load_file(str(start))
    after = load_file(str(tmp_path / "run" / "final.safetensors"))
    assert not torch.equal(before["stem.0.weight"], after["stem.0.weight"])
    assert float(after["prior.weight"].abs().max()) > 0
    for name in ("best", "last", "final"):
        net, _ = load_model("fast", tmp_path / "run" / f"{name}.safetensors")
        assert net.prior is not None
    # new_lr_scale: the new part takes ~10× the steps, the trained weights the same ones
    train(_cfg(photos, tmp_path / "fast", new_parts=["prior."], new_lr_scale=10.0, **kw))
    faster = load_file(str(tmp_path / "fast" / "final.safetensors"))
    assert float(faster["prior.weight"].abs().max()) > 5 * float(after["prior.weight"].abs().max())
    step = lambda w, k: float((w[k] - before[k]).abs().max())  # noqa: E731
    assert step(faster, "stem.0.weight") == pytest.approx(step(after, "stem.0.weight"), rel=0.5)
    with pytest.raises(ValueError, match="new_lr_scale needs new_parts"):
        _cfg(photos, tmp_path / "x", new_lr_scale=10.0)


def test_clean_ohem_fills_clean_slots_with_what_the_net_harms_most() -> None:
    """Online hard clean examples: only the batch's clean slots change, and they get the clean
    patches (batch's or pool's) with the largest current error of the net on themselves."""
    from streamer.train.loop import _worst_clean

    class Darken(torch.nn.Module):  # error on a clean patch grows with its brightness
        def forward(self, x):
            return x * 0.9

    torch.manual_seed(0)
    level = lambda v: torch.full((1, 3, 8, 8), v)  # noqa: E731
    dirty = torch.cat([level(0.2), torch.rand(1, 3, 8, 8), level(0.1)])
    clean = torch.cat([level(0.2), torch.rand(1, 3, 8, 8), level(0.1)])  # slots 0 and 2 are clean
    mask = torch.zeros(3, 1, 8, 8)
    pool = torch.cat([level(0.9), level(0.05), level(0.5)])
    out = _worst_clean(Darken(), [dirty, clean, mask], pool)
    assert torch.equal(out[0][1], dirty[1]) and torch.equal(out[1][1], clean[1])  # corrupted slot kept
    assert sorted(float(out[1][i].mean()) for i in (0, 2)) == pytest.approx([0.5, 0.9])
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][2], out[1][2])  # still clean pairs
    assert out[2] is mask
    untouched = _worst_clean(Darken(), [dirty[1:2], clean[1:2]], pool)
    assert torch.equal(untouched[0], dirty[1:2])


def test_a_run_with_clean_ohem_trains_and_records_it(photos: Path, tmp_path: Path) -> None:
    cfg = _cfg(photos, tmp_path / "run", model="fast", model_kwargs={"glob": True}, loss="log-mse",
               loss_eps=1e-4, steps=6, val_every=6, clean_hard=0.3, clean_ohem=3, mix_dirt=0.4,
               mix_raindrop=0.0, mix_streaks=0.0, workers=1)  # both streams in worker processes
    card = train(cfg)
    assert card["steps"] == 6 and card["config"]["clean_ohem"] == 3


def test_region_must_hold_a_patch(tmp_path: Path) -> None:
    """`region` sets the corrupted area patches are cut from; a patch bigger than it is refused."""
    with pytest.raises(ValueError, match=r"region \[160, 384\]: give \[min, max\] with max >= patch \(512\)"):
        TrainConfig.model_validate({"model": "fast", "out": str(tmp_path), "patch": 512})
    cfg = TrainConfig.model_validate({"model": "fast", "out": str(tmp_path), "patch": 384, "region": [384, 512]})
    assert cfg.region == (384, 512)


def test_time_clock_anneals_by_the_minutes_whichever_is_further() -> None:
    """`lr_clock: time` ends the cosine when `max_minutes` are up, even far short of `steps`
    (a lent GPU of unknown speed), and never runs behind the step count."""
    cfg = TrainConfig.model_validate({"model": "fast", "out": "x", "lr": 1e-3, "warmup": 0, "steps": 1000,
                                      "lr_clock": "time", "max_minutes": 10.0})
    assert _lr_at(cfg, 10, 0.0) == pytest.approx(1e-3, rel=1e-3)
    assert _lr_at(cfg, 10, 5.0) == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5), rel=1e-6)  # half-way by the clock
    assert _lr_at(cfg, 10, 10.0) == pytest.approx(2e-5)  # annealed when time is up
    assert _lr_at(cfg, 1000, 0.0) == pytest.approx(2e-5)  # the steps ran out first
    by_steps = cfg.model_copy(update={"lr_clock": "steps"})
    assert _lr_at(by_steps, 10, 10.0) == pytest.approx(_lr_at(by_steps, 10, 0.0))  # the clock ignored
    with pytest.raises(ValueError, match="lr_clock: time needs max_minutes > 0"):
        TrainConfig.model_validate({"model": "fast", "out": "x", "lr_clock": "time"})


def test_keep_checkpoints_saves_every_validation(photos: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train(_cfg(photos, out, steps=4, val_every=2, keep_checkpoints=True))
    assert sorted(p.name for p in out.glob("step*.safetensors")) == ["step2.safetensors", "step4.safetensors"]
    kept, last = load_file(str(out / "step4.safetensors")), load_file(str(out / "last.safetensors"))
    assert kept.keys() == last.keys() and all(torch.equal(kept[k], last[k]) for k in kept)
    train(_cfg(photos, tmp_path / "plain", steps=2, val_every=2))
    assert not list((tmp_path / "plain").glob("step*.safetensors"))


def test_ema_saves_the_weight_average_and_resumes_it(photos: Path, tmp_path: Path) -> None:
    """``ema: 0.5``: after step 1 the average is step 1's weights; after step 2 it is the mean of
    steps 1 and 2 (raw, in last.safetensors); a resumed run averages on from the saved average."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    files = lambda *names: [load_file(str(out / n)) for n in names]  # noqa: E731
    train(_cfg(photos, out, steps=2, val_every=1, keep_checkpoints=True, ema=0.5))
    w1, final, ema2 = files("step1.safetensors", "final.safetensors", "ema.safetensors")
    train(_cfg(photos, tmp_path / "plain", steps=1, val_every=1))  # no ema: step 1's raw weights
    raw1 = load_file(str(tmp_path / "plain" / "last.safetensors"))
    (raw2,) = files("last.safetensors")
    moved = [k for k in raw2 if raw2[k].is_floating_point() and not torch.equal(raw2[k], w1[k])]
    assert moved, "training did not move the weights"
    for k in moved:
        assert torch.allclose(w1[k], raw1[k], atol=1e-6)
        assert torch.allclose(final[k], 0.5 * w1[k] + 0.5 * raw2[k], atol=1e-6)
        assert torch.equal(ema2[k], final[k])
    train(_cfg(photos, out, steps=3, val_every=1, keep_checkpoints=True, ema=0.5), resume=True)
    (raw3, w3) = files("last.safetensors", "step3.safetensors")
    for k in moved:
        assert torch.allclose(w3[k], 0.5 * ema2[k] + 0.5 * raw3[k], atol=1e-6)


class _CvThreads(torch.utils.data.IterableDataset):
    def __iter__(self):
        yield cv2.getNumThreads()


def test_synthesis_workers_run_one_opencv_thread() -> None:
    """OpenCV's pool ignores OMP_NUM_THREADS: workers forked inside `one_opencv_thread` run one
    thread each (setting it inside a forked worker deadlocked, session 15), the parent keeps its own."""
    cv2.setNumThreads(2)
    cv2.resize(np.zeros((256, 256, 3), np.float32), (512, 512))  # the parent's pool is running
    with one_opencv_thread():
        it = iter(torch.utils.data.DataLoader(_CvThreads(), batch_size=None, num_workers=1))
    assert cv2.getNumThreads() == 2
    assert next(it) == 1


def test_data_rate_measures_both_streams_without_training(photos: Path, tmp_path: Path, capsys) -> None:
    """``streamer train --data-rate``: patches/s of the main stream and of ``clean_ohem``'s
    pool, and the step rate the workers can feed (the slower of the two), no run folder."""
    from streamer.cli import main

    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: fast\ndata: {photos}\nout: {tmp_path / 'run'}\npatch: 32\nbatch: 4\n"
                   "workers: 2\nclean_hard: 0.5\nclean_hard_kinds: [panels, specks]\nclean_ohem: 4\n")
    assert main(["train", "--config", str(cfg), "--data-rate", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["patches_per_s_per_worker"] > 0 and report["pool_candidates_per_s_per_worker"] > 0
    assert report["pool_workers"] == 1  # round(2 · 4 / (2 · 4))
    main_fed = 2 * report["patches_per_s_per_worker"] / 4
    pool_fed = report["pool_candidates_per_s_per_worker"] / 4
    assert report["fed_steps_per_s"] == pytest.approx(min(main_fed, pool_fed), rel=0.02, abs=0.1)
    assert not (tmp_path / "run").exists()


def test_without_validation_photos_best_is_the_latest(photos: Path, tmp_path: Path, caplog) -> None:
    """A camera's own few frames may hold no validation photo (1 in 8 by name): say so, and let
    best.safetensors follow the run instead of freezing at the first check."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in list_images(photos):
        if not is_validation(p):
            shutil.copy(p, folder / p.name)
    torch.set_num_threads(1)
    with caplog.at_level("WARNING", logger="streamer.train.loop"):
        train(_cfg(folder, tmp_path / "run", steps=4, val_every=2))
    assert "none of the 4 photos" in caplog.text
    best = load_file(str(tmp_path / "run" / "best.safetensors"))
    final = load_file(str(tmp_path / "run" / "final.safetensors"))
    assert all(torch.equal(best[k], final[k]) for k in final)


def test_a_file_given_as_the_data_folder_is_named_so(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    with pytest.raises(ConfigError, match="photo.jpg: a file, not a folder"):
        list_images(photo)
    with pytest.raises(ConfigError, match=r"nope: image folder not found \(looked in"):
        list_images("nope")


def test_an_unreadable_photo_is_named_as_a_config_error(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.webp"), np.zeros((8, 8, 3), np.uint8))  # every suffix OpenCV reads
    (tmp_path / "b.png").write_bytes(b"not a png")
    a, b = list_images(tmp_path)
    assert read_rgb(a).shape == (8, 8, 3)
    with pytest.raises(ConfigError, match=r"b\.png: not a readable image; remove it or convert"):
        read_rgb(b)
