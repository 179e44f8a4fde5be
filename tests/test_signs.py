"""`streamer eval-signs`: signs with known legends, read by Tesseract before and after restoration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamer.cli import main
from streamer.errors import ConfigError
from streamer.evaluate import signs
from streamer.evaluate.runner import EvalRequest
from streamer.models import get_spec
from streamer.models.weights import save_weights


def _has_tesseract() -> bool:
    try:
        import pytesseract
    except ImportError:
        return False
    return shutil.which(pytesseract.pytesseract.tesseract_cmd) is not None


needs_ocr = pytest.mark.skipif(not _has_tesseract(), reason="needs Tesseract OCR (apt-get install "
                               "tesseract-ocr; pip install -e '.[ocr]')")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two textured 400×400 'scenes' (big enough for the widest legend at 20 px)."""
    out = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:400, 0:400].astype(np.float32)
    for i in range(2):
        img = np.stack([xx * 0.4 + 40 * i, yy * 0.3 + 60, (xx + yy) * 0.2 + 30], axis=-1)
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"scene{i}.png"), img)
    return out


def test_char_accuracy_is_one_minus_edit_distance() -> None:
    assert signs.char_accuracy("STOP", "STOP") == 1.0
    assert signs.char_accuracy("ST0P", "STOP") == 0.75  # one substitution
    assert signs.char_accuracy("NO PARKNG", "NO PARKING") == 0.9  # one deletion
    assert signs.char_accuracy("", "YIELD") == 0.0
    assert signs.char_accuracy("XXXXXXXXXXXX", "STOP") == 0.0  # floored, never negative


def test_paste_legend_is_seeded_and_inside_the_image() -> None:
    img = np.full((200, 300, 3), 0.3, np.float32)
    a, box = signs.paste_legend(img, "NO ENTRY", 14, np.random.default_rng(5))
    b, box_b = signs.paste_legend(img, "NO ENTRY", 14, np.random.default_rng(5))
    y, x, h, w = box
    assert box == box_b and np.array_equal(a, b)
    assert 0 <= y and y + h <= 200 and 0 <= x and x + w <= 300
    panel = a[y:y + h, x:x + w]
    assert panel.max() > 0.6 and panel.min() < 0.15  # a lit panel with dark letters
    assert np.array_equal(np.delete(a, np.s_[y:y + h], axis=0), np.delete(img, np.s_[y:y + h], axis=0))
    with pytest.raises(ConfigError, match="does not fit"):
        signs.paste_legend(np.zeros((20, 20, 3), np.float32), "SPEED LIMIT 50", 20, np.random.default_rng(0))


def test_missing_tesseract_is_one_clear_error(monkeypatch) -> None:
    pytest.importorskip("pytesseract")
    monkeypatch.setattr(signs.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install tesseract-ocr"):
        signs.run_signs(EvalRequest(clean=Path("."), corruption="dirt"))


@needs_ocr
def test_clean_signs_are_read_and_heavy_dirt_hides_them(photos: Path) -> None:
    req = EvalRequest(clean=photos, corruption="dirt", heavy=True, split="all")
    result = signs.run_signs(req)
    rows = {r["method"]: r for r in result["rows"]}
    assert rows[signs.CLEAN_ROW]["char_accuracy"] >= 0.9
    assert rows["input (corrupted)"]["char_accuracy"] < rows[signs.CLEAN_ROW]["char_accuracy"] - 0.2
    assert len(result["samples"]) == 2 * len(signs.LETTER_PX)


@needs_ocr
def test_cli_identity_model_reads_exactly_like_its_input(photos: Path, tmp_path: Path, capsys) -> None:
    """A drn whose R head is zero is the identity (clean = input − 0), so it must read what the input
    reads. (A fresh drn's head is only near zero: on some hosts that flipped a borderline read.)"""
    net = get_spec("drn").build()
    torch.nn.init.zeros_(net.head.weight)
    weights = save_weights(net, tmp_path / "drn.safetensors")
    out = tmp_path / "signs.json"
    assert main(["eval-signs", "--clean", str(photos), "--corruption", "raindrop", "--split", "all",
                 "--limit", "1", "--crop", "320", "--model", "drn", "--weights", f"drn={weights}", "--json", str(out)]) == 0
    assert "Sign legibility under raindrop" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert [s["drn"] for s in result["samples"]] == [s["input (corrupted)"] for s in result["samples"]]
    assert [r["method"] for r in result["rows"]] == [signs.CLEAN_ROW, "input (corrupted)", "drn"]
    assert len(result["samples"]) == len(signs.LETTER_PX)
