"""Loading weights that do not fit gives one clear WeightsError line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from streamer.errors import WeightsError
from streamer.models import get_spec, list_specs
from streamer.models.drn import DRN
from streamer.models.weights import load_weights, save_weights


@pytest.fixture
def drn_file(tmp_path):
    return save_weights(DRN(), tmp_path / "drn.safetensors")


def test_good_file_loads_exactly(drn_file) -> None:
    src = load_file(str(drn_file))
    net = load_weights(DRN(), drn_file)
    for k, v in net.state_dict().items():
        assert torch.equal(v, src[k])


def test_saved_weights_are_readable_by_other_users(drn_file) -> None:
    """safetensors makes its files 0600: a service user could not read a model trained by another."""
    assert drn_file.stat().st_mode & 0o777 == 0o644


def test_wrong_shape_names_the_tensor(tmp_path) -> None:
    path = save_weights(DRN(c1=16), tmp_path / "small.safetensors")
    with pytest.raises(WeightsError, match=r"stem\.0\.weight has shape \(16, 3, 3, 3\), the model needs \(32, 3, 3, 3\)"):
        load_weights(DRN(), path, name="drn")


def test_missing_key_says_other_architecture(drn_file, tmp_path) -> None:
    state = load_file(str(drn_file))
    del state["head.weight"]
    path = tmp_path / "cut.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"another architecture: missing 1 keys \(e\.g\. head\.weight\)"):
        load_weights(DRN(), path)


def test_weights_of_another_model_are_refused(tmp_path) -> None:
    path = save_weights(get_spec("eigen2013-dirt").build(), tmp_path / "eigen.safetensors")
    with pytest.raises(WeightsError, match="weights are for another architecture"):
        load_weights(DRN(), path)


def test_corrupt_file(drn_file) -> None:
    data = drn_file.read_bytes()
    drn_file.write_bytes(data[: len(data) // 3])  # truncated download
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_weights(DRN(), drn_file)


def test_garbage_file(tmp_path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00\x01 not safetensors at all")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors file"):
        load_weights(DRN(), path)


def test_pickle_is_refused_before_reading(tmp_path) -> None:
    path = tmp_path / "drn.pt"
    torch.save(DRN().state_dict(), path)
    with pytest.raises(WeightsError, match="pickled weights are not loaded for safety"):
        load_weights(DRN(), path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(WeightsError, match="weights file not found"):
        load_weights(DRN(), tmp_path / "nope.safetensors")


def test_a_file_given_by_path_alone_says_what_is_wrong_with_it(tmp_path) -> None:
    """`--model runs/mine/best.safetensors` with a typo or a truncated copy: the reason, not a
    request for --arch (which only the loader then explained)."""
    from streamer.models.weights import spec_for_weights

    with pytest.raises(WeightsError, match="nope.safetensors: weights file not found"):
        spec_for_weights(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01 not safetensors at all")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors file"):
        spec_for_weights(junk)


def test_weights_carry_their_architecture_options(tmp_path) -> None:
    """A width-0.5 fine-tune of ``fast`` loads by the model's name wherever weights are loaded."""
    from streamer.backends import open_backend
    from streamer.evaluate.restore import load_model
    from streamer.models.fast import FastNet
    from streamer.models.weights import ARCH_KEY, weights_arch

    arch = {"c1": 16, "c2": 24, "c3": 32}
    path = save_weights(FastNet(**arch), tmp_path / "w05.safetensors", {ARCH_KEY: arch})
    assert weights_arch(path) == arch
    net, _ = load_model("fast", path)
    assert net.stem[0].out_channels == 16
    x = torch.rand(1, 3, 32, 48)
    with open_backend(str(path), "torch", arch="fast", threads=1) as backend, torch.no_grad():
        assert np.allclose(backend(x.numpy()), net(x).numpy(), atol=1e-6)
    plain = save_weights(FastNet(**arch), tmp_path / "plain.safetensors")  # no options stored
    with pytest.raises(WeightsError, match="another configuration|another architecture"):
        load_model("fast", plain)


def test_soup_averages_weights_and_counts_a_missing_zero_option_as_zero(tmp_path) -> None:
    """scripts/soup.py (how E30 was made): a weighted mean per tensor; a file without ``glob``
    adds zeros to the glob parts; the soup loads by the model's name with the merged options."""
    import subprocess
    import sys
    from pathlib import Path

    from streamer.evaluate.restore import load_model
    from streamer.models.fast import FastNet
    from streamer.models.weights import ARCH_KEY, weights_arch

    torch.manual_seed(0)
    small = {"c1": 8, "c2": 8, "c3": 8}
    a, b = FastNet(**small, glob=True), FastNet(**small)
    with torch.no_grad():
        a.glob.weight.normal_()
    fa = save_weights(a, tmp_path / "a.safetensors", {ARCH_KEY: small | {"glob": True}})
    fb = save_weights(b, tmp_path / "b.safetensors", {ARCH_KEY: small})
    script = Path(__file__).parents[1] / "scripts" / "soup.py"
    out = tmp_path / "soup.safetensors"
    subprocess.run([sys.executable, str(script), str(out), f"{fa}:3", f"{fb}:1"], check=True)
    assert weights_arch(out) == small | {"glob": True}
    net, _ = load_model("fast", out)
    sa, sb = a.state_dict(), b.state_dict()
    for k, v in net.state_dict().items():
        want = 0.75 * sa[k] + 0.25 * sb[k] if k in sb else 0.75 * sa[k]
        assert torch.allclose(v, want, atol=1e-6), k
    wide = save_weights(FastNet(), tmp_path / "wide.safetensors")
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "x.safetensors"), str(fb), str(wide)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "different architecture options" in bad.stderr


def test_mask_temperature_edit_maps_the_drop_logits(tmp_path) -> None:
    """scripts/mask_temperature.py: the edited file's finder gives a·z + c for the original's z,
    and nothing else changes (the restorer's output on a frame without drops stays the same)."""
    import importlib.util
    from pathlib import Path

    from streamer.evaluate.restore import load_model
    from streamer.models.fast import FastNet
    from streamer.models.weights import ARCH_KEY

    script = Path(__file__).parents[1] / "scripts" / "mask_temperature.py"
    spec = importlib.util.spec_from_file_location("mask_temperature", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    arch = {"c1": 8, "c2": 8, "c3": 8, "drops": True, "drop_context": True}
    src = save_weights(FastNet(**arch), tmp_path / "src.safetensors", {ARCH_KEY: arch})
    module.edit(src, tmp_path / "out.safetensors", 2.0, -0.5)
    a, _ = load_model("fast-drops", src)
    b, _ = load_model("fast-drops", tmp_path / "out.safetensors")
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        (xs, d1), (xs_b, d1_b) = a.features(x), b.features(x)
        assert torch.equal(d1, d1_b)
        assert torch.allclose(b.drops(xs_b, d1_b), 2.0 * a.drops(xs, d1) - 0.5, atol=1e-5)
        assert not torch.allclose(a(x), b(x))  # the mask, and so the output, did change


@pytest.mark.parametrize("spec", [s for s in list_specs() if s.weights_path and s.weights_path.exists()],
                         ids=lambda s: s.name)
def test_shipped_weights_match_their_training_card(spec) -> None:
    """Each shipped file's card names it by hash: the record is of these very weights."""
    import json

    from streamer.models.weights import sha256_file

    card = json.loads(spec.weights_path.with_name(spec.weights_path.name.replace(".safetensors", ".card.json")).read_text())
    assert card["weights_sha256"] == sha256_file(spec.weights_path)
    assert card["command"]  # how it was made: a training run, a composition or a weight average
