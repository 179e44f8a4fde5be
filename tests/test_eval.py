"""`streamer eval` on three photos: the Table-1 rows for input, models, baselines, clean check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamer.cli import main
from streamer.errors import ConfigError
from streamer.evaluate.metrics import psnr_db, ssim, uqi
from streamer.evaluate.runner import EvalRequest, run_eval, select_photos
from streamer.models import get_spec
from streamer.models.weights import save_weights
from streamer.train.data import is_validation


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:88].astype(np.float32)
    for i in range(3):
        img = np.stack([xx * (2 + i), yy * 3, (xx + yy) * 1.5], axis=-1) % 256
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"img{i}.png"), img)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return {name: save_weights(get_spec(name).build(), folder / f"{name}.safetensors")
            for name in ("drn", "eigen2013-dirt")}


def test_metrics_identical_and_different() -> None:
    a = np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert psnr_db(a, a) == 100.0 and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)
    assert 30 < psnr_db(b, a) < 35 and ssim(b, a) < 1.0


def test_psnr_one_scale_for_uint8_and_float() -> None:
    """Eval (uint8), training and export parity (float in [0, 1]) read the same dB and cap."""
    a = np.random.default_rng(1).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)
    fa, fb = a / 255.0, (b / 255.0).astype(np.float32)
    assert psnr_db(fb, fa) == pytest.approx(psnr_db(b, a), abs=1e-5)
    assert psnr_db(fa, fa) == psnr_db(fa + 1e-9, fa) == 100.0
    with pytest.raises(ValueError, match="one range"):
        psnr_db(b, fa)


def test_uqi_matches_the_definition_window_by_window() -> None:
    """Wang & Bovik 2002 by hand: Q per 8×8 window, averaged over windows and channels."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.normal(5, 30, a.shape), 0, 255).astype(np.uint8)
    qs = []
    for c in range(3):
        for i in range(14 - 7):
            for j in range(17 - 7):
                x, y = a[i:i + 8, j:j + 8, c].astype(float), b[i:i + 8, j:j + 8, c].astype(float)
                mx, my, cxy = x.mean(), y.mean(), ((x - x.mean()) * (y - y.mean())).mean()
                qs.append(4 * cxy * mx * my / ((x.var() + y.var()) * (mx**2 + my**2)))
    assert uqi(b, a) == pytest.approx(np.mean(qs), abs=1e-9) and uqi(b, a) < 0.99
    flat = np.full((16, 16, 3), 90, np.uint8)
    assert uqi(a, a) == pytest.approx(1.0) and uqi(flat, flat) == 1.0  # flat windows: no NaN
    assert uqi(flat // 3, flat) == pytest.approx(2 * 30 * 90 / (30**2 + 90**2))  # luminance term only


def test_eval_on_three_images_has_every_row(photos: Path, weights: dict[str, Path], tmp_path: Path,
                                            capsys) -> None:
    out_json, report = tmp_path / "eval.json", tmp_path / "report"
    argv = ["eval", "--clean", str(photos), "--corruption", "dirt", "--split", "all",
            "--model", "drn", "--model", "eigen2013-dirt", "--seed", "0", "--no-bm3d",
            "--json", str(out_json), "--report", str(report)]
    argv += [a for name, p in weights.items() for a in ("--weights", f"{name}={p}")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(out_json.read_text())
    methods = [r["method"] for r in result["rows"]]
    assert methods == ["input (corrupted)", "drn", "eigen2013-dirt", "median 5x5", "median 8x8",
                       "bilateral s3 r0.3", "non-local means"]
    assert result["n_images"] == 3 and all(r["n"] == 3 for r in result["rows"])
    assert [r["method"] for r in result["clean_rows"]] == ["drn", "eigen2013-dirt"]
    for m in methods + ["Clean-input check"]:
        assert m in printed
    row = {r["method"]: r for r in result["rows"]}
    assert row["input (corrupted)"]["psnr_gain"] == 0.0
    assert "| UQI |" in printed and all(-1.0 <= r["uqi_mean"] <= 1.0 for r in result["rows"] + result["clean_rows"])
    assert row["median 8x8"]["psnr_mean"] < row["median 5x5"]["psnr_mean"] + 1.0
    assert {p.name for p in report.iterdir()} >= {"gain.png", "table.md", "crops_img0.png"}


def test_same_seed_same_table(photos: Path, weights: dict[str, Path]) -> None:
    req = EvalRequest(clean=photos, corruption="raindrop", models=("drn",), weights=weights,
                      split="all", limit=2, bm3d=False, clean_check=False)
    a, b = run_eval(req), run_eval(req)
    assert a["rows"] == b["rows"]


def test_eval_on_a_deployment_runtime_matches_torch(photos: Path, fast_weights: Path,
                                                     tmp_path: Path, monkeypatch) -> None:
    """--backend onnxruntime gives torch's numbers; --int8 runs the calibrated model."""
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    common = dict(clean=photos, corruption="dirt", models=("fast",), weights={"fast": fast_weights},
                  split="all", limit=2, baselines=False)
    by_torch = {r["method"]: r for r in run_eval(EvalRequest(**common))["rows"]}
    by_ort = {r["method"]: r for r in run_eval(EvalRequest(**common, backend="onnxruntime"))["rows"]}
    assert abs(by_torch["fast"]["psnr_mean"] - by_ort["fast"]["psnr_mean"]) < 0.05
    calib = Path(__file__).resolve().parents[1] / "calib"
    monkeypatch.chdir(calib.parent)  # int8 calibrates on ./calib, the shipped frames
    res = run_eval(EvalRequest(**common, backend="onnxruntime", int8=True))
    assert res["int8"] and {r["method"] for r in res["rows"]} == {"input (corrupted)", "fast"}
    with pytest.raises(ConfigError, match="--int8 runs on --backend onnxruntime or openvino"):
        run_eval(EvalRequest(**common, int8=True))


def test_model_files_are_scored_as_given(photos: Path, fast_weights: Path, tmp_path: Path) -> None:
    """`--model FILE`: weights and an exported ONNX give the registered model's numbers, row by
    row in the order given, each file's hash in the record; an engine or a missing file is a
    one-line error before any photo is read."""
    from streamer.export import export
    from streamer.export.formats import ExportRequest

    onnx = tmp_path / "fast.onnx"
    export(ExportRequest(model="fast", format="onnx", precision="fp32", output=onnx, weights=fast_weights))
    common = dict(clean=photos, corruption="dirt", split="all", limit=2, baselines=False)
    named = run_eval(EvalRequest(**common, models=("fast",), weights={"fast": fast_weights}))
    files = run_eval(EvalRequest(**common, models=(str(onnx), str(fast_weights)), backend="onnxruntime"))
    by_file = {r["method"]: r for r in files["rows"]}
    reference = next(r for r in named["rows"] if r["method"] == "fast")["psnr_mean"]
    assert [r["method"] for r in files["rows"]] == ["input (corrupted)", str(onnx), str(fast_weights)]
    for path in (onnx, fast_weights):
        assert abs(by_file[str(path)]["psnr_mean"] - reference) < 0.05
    assert files["models"][str(onnx)]["weights"] == str(onnx)
    torch_rows = run_eval(EvalRequest(**common, models=(str(fast_weights),)))["rows"]
    assert abs(torch_rows[1]["psnr_mean"] - reference) < 1e-6  # the torch path reads the file too
    with pytest.raises(ConfigError, match="an ONNX file needs --backend onnxruntime or openvino"):
        run_eval(EvalRequest(**common, models=(str(onnx),)))
    with pytest.raises(ConfigError, match="file not found"):
        run_eval(EvalRequest(**common, models=(str(tmp_path / "nope.onnx"),)))
    engine = tmp_path / "fast.engine"
    engine.write_bytes(b"x")
    with pytest.raises(ConfigError, match="score the ONNX the engine was built from"):
        run_eval(EvalRequest(**common, models=(str(engine),)))


def test_unknown_backend_is_refused(photos: Path) -> None:
    with pytest.raises(ConfigError, match="eval backend 'tensorrt': choose one of torch, onnxruntime, openvino"):
        run_eval(EvalRequest(clean=photos, corruption="dirt", backend="tensorrt"))


def test_splits_partition_the_folder(tmp_path: Path) -> None:
    """--split val and --split train are disjoint and together every photo (the generalisation gap)."""
    for i in range(40):
        (tmp_path / f"p{i:02d}.png").touch()
    pick = {s: select_photos(EvalRequest(clean=tmp_path, corruption="dirt", split=s)) for s in ("val", "train", "all")}
    assert pick["val"] and pick["train"]
    assert all(is_validation(p) for p in pick["val"]) and not any(is_validation(p) for p in pick["train"])
    assert sorted(pick["val"] + pick["train"]) == pick["all"]


def test_several_crops_per_photo_keep_the_centre_crop_first(photos: Path, weights: dict[str, Path]) -> None:
    """--crops N: crop 0 is exactly the one-crop run (old numbers stay comparable), the others are
    other windows with their own corruption, and the clean tail is summarised over all of them."""
    common = dict(clean=photos, corruption="dirt", models=("drn",), weights=weights, split="all",
                  crop=48, baselines=False)
    one, three = run_eval(EvalRequest(**common)), run_eval(EvalRequest(**common, crops=3))
    assert [r["crop_index"] for r in three["per_image"]] == [0, 1, 2] * 3
    firsts = [r for r in three["per_image"] if r["crop_index"] == 0]
    assert firsts == one["per_image"]
    inputs = [r["input (corrupted)"] for r in three["per_image"]]
    assert len(set(inputs)) == 9  # every window and corruption differs
    clean = three["clean_rows"][0]
    assert clean["n"] == 9 and clean["psnr_min"] <= clean["psnr_tail5"] <= clean["psnr_p5"] + 1e-9
    assert clean["psnr_tail5"] == min(r["clean drn"][0] for r in three["per_image"])  # 5 % of 9 -> 1
    assert "3 crops of 48 px per photo" in three["table"] and "worst 5 % mean" in three["table"]
    with pytest.raises(ConfigError, match="needs --crop SIDE"):
        run_eval(EvalRequest(clean=photos, corruption="dirt", crops=2))


def test_tail_mean_is_the_mean_of_the_worst_values() -> None:
    from streamer.evaluate.table import tail_mean

    values = np.arange(100, dtype=np.float64)
    assert tail_mean(values) == pytest.approx(2.0)  # worst 5 of 100: 0..4
    assert tail_mean(values, 0.2) == pytest.approx(9.5)
    assert tail_mean([7.0]) == 7.0


def test_ship_gate_rule_fails_each_row_it_names() -> None:
    """scripts/ship_gate.py: a candidate ships only if no gain row, the clean tail or the clean
    floor is worse; each failure is named."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "ship_gate.py"
    spec = importlib.util.spec_from_file_location("ship_gate", path)
    gate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gate)
    shipped = {row: 1.0 for row in gate.GAIN_ROWS} | {"clean_tail5": 40.0, "clean_mean": 50.0}
    assert gate.verdict(dict(shipped), shipped) == []
    worse = shipped | {"raindrop": 0.9, "clean_tail5": 39.9, "clean_mean": 37.0}
    fails = gate.verdict(worse, shipped)
    assert len(fails) == 3 and fails[0].startswith("raindrop +0.900 < shipped +1.000")
    assert "clean worst-5 %" in fails[1] and "clean mean 37.00 < 38.0" in fails[2]


def test_cli_crops_without_a_crop_side_is_a_one_line_error(photos: Path, capsys) -> None:
    assert main(["eval", "--clean", str(photos), "--corruption", "dirt", "--split", "all", "--crops", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after tqdm's empty bar
    assert err.startswith("streamer: error: --crops 3:") and "needs --crop SIDE" in err


def test_corruption_none_scores_only_the_clean_check(photos: Path, weights: dict[str, Path], tmp_path: Path) -> None:
    """--corruption none: the same clean scores as the clean check of a corrupted run (the ship
    gate's clean tail without restoring dirty crops it never scores), no Table-1 rows, no chart."""
    common = dict(clean=photos, models=("drn",), weights=weights, split="all", crop=48, crops=2, baselines=False)
    dirt = run_eval(EvalRequest(corruption="dirt", **common))
    none = run_eval(EvalRequest(corruption="none", report=tmp_path / "rep", **common))
    assert none["rows"] == [] and none["clean_rows"] == dirt["clean_rows"]
    assert [r["clean drn"] for r in none["per_image"]] == [r["clean drn"] for r in dirt["per_image"]]
    assert "input (corrupted)" not in none["per_image"][0] and "| method |" not in none["table"]
    assert not (tmp_path / "rep" / "gain.png").exists() and list((tmp_path / "rep").glob("crops_*.png"))
    with pytest.raises(ConfigError, match="name a --model"):
        run_eval(EvalRequest(corruption="none", clean=photos, split="all"))


def test_cli_corruption_none_is_offered_by_eval_only(photos: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval-signs", "--clean", str(photos), "--corruption", "none", "--model", "fast"])
    assert "invalid choice: 'none'" in capsys.readouterr().err


def test_eval_refuses_what_it_would_ignore_or_fail_to_write(photos: Path, weights: dict[str, Path],
                                                            tmp_path: Path, capsys) -> None:
    """A --weights NAME that is not a --model scored the shipped weights instead, silently; an
    unwritable --json failed with a traceback after the whole evaluation. Both: one line, at once."""
    (tmp_path / "afile").write_text("")
    base = ["eval", "--clean", str(photos), "--corruption", "dirt", "--split", "all", "--model", "drn",
            "--no-baselines"]
    for extra, line in (
            (["--weights", f"dnr={weights['drn']}"], "--weights dnr=.*'dnr' is not evaluated here; did you mean 'drn'"),
            (["--json", str(tmp_path / "afile" / "e.json")], "--json .*afile is a file, not a folder"),
            (["--report", str(tmp_path / "afile")], "--report .*afile is a file, not a folder")):
        assert main([*base, *extra]) == 1
        err = capsys.readouterr().err
        assert re.search(line, err) and len(err.strip().splitlines()) == 1, err


def test_a_crop_larger_than_the_photos_says_so(photos: Path) -> None:
    """72×88 photos at --crop 80: the 72-px side is used whole, and the header says it was."""
    from streamer.evaluate.runner import EvalRequest, run_eval

    res = run_eval(EvalRequest(clean=photos, corruption="dirt", models=(), split="all", crop=80, baselines=False))
    assert res["crop_smaller_photos"] == 3
    assert "centre crop 80 px (3 photos smaller on a side: that side whole)" in res["table"]
    res = run_eval(EvalRequest(clean=photos, corruption="dirt", models=(), split="all", crop=64, baselines=False))
    assert res["crop_smaller_photos"] == 0 and "smaller" not in res["table"]
