"""Every registered model: shape, range, ONNX parity; the paper's weight count for eigen2013."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from streamer.evaluate.restore import restore_image
from streamer.export.onnx_export import torchscript_export
from streamer.models import get_spec, list_specs
from streamer.models.drn import IndexPool, unpool
from streamer.models.eigen2013 import Eigen2013
from streamer.models.flops import count_weights

SPECS = [s.name for s in list_specs()]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _net(name: str) -> torch.nn.Module:
    return get_spec(name).build().eval()


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("size", [(37, 45), (29, 51), (5, 7)])  # 5x7: pads past the size (reflect cannot)
def test_output_shape_equals_input_for_odd_sizes(name: str, size: tuple[int, int]) -> None:
    spec = get_spec(name)
    img = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    out = restore_image(_net(name), img, spec.multiple)
    assert out.shape == img.shape


@pytest.mark.parametrize("name", SPECS)
def test_direct_forward_keeps_shape_at_its_multiple(name: str) -> None:
    m = get_spec(name).multiple
    h, w = 5 * max(m, 8), 7 * max(m, 8) if m > 1 else 43
    with torch.no_grad():
        y = _net(name)(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)


@pytest.mark.parametrize("name", SPECS)
def test_output_range_is_0_1_in_eval(name: str) -> None:
    x = torch.rand(1, 3, 32, 48) * 1.2 - 0.1  # a little outside [0, 1] on purpose
    with torch.no_grad():
        y = _net(name)(x)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_eigen2013_has_the_papers_753664_weights() -> None:
    net = Eigen2013()
    assert count_weights(net) == 753_664
    assert tuple(net.conv1.weight.shape) == (512, 3, 16, 16)
    assert tuple(net.conv2.weight.shape) == (512, 512, 1, 1)
    assert tuple(net.conv3.weight.shape) == (512, 3, 8, 8)


def test_eigen2013_dirt_and_rain_share_the_architecture() -> None:
    dirt, rain = get_spec("eigen2013-dirt"), get_spec("eigen2013-rain")
    assert dirt.builder is rain.builder
    assert (dirt.weights, rain.weights) == ("eigen2013-dirt.safetensors", "eigen2013-rain.safetensors")
    assert (dirt.corruption, rain.corruption) == ("dirt", "raindrop")


def test_eigen2013_paper_init_is_normal_std_0_001() -> None:
    w = Eigen2013(init="paper").conv1.weight
    assert abs(float(w.mean())) < 1e-4
    assert 0.0009 < float(w.std()) < 0.0011


def test_eigen2013_output_is_average_over_overlaps() -> None:
    """With tanh features constant, the 1/m averaging makes the output the same everywhere,
    borders included (a plain full convolution would be darker at the 7 px border)."""
    net = Eigen2013().eval()
    with torch.no_grad():
        net.conv1.weight.zero_()
        net.conv1.bias.fill_(0.5)
        net.conv2.weight.zero_()
        net.conv2.bias.fill_(0.5)
        net.conv3.weight.fill_(0.001)
        y = net(torch.rand(1, 3, 21, 30))
    assert torch.allclose(y, y[0, :, 10, 15].view(1, 3, 1, 1).expand_as(y), atol=1e-6)


@pytest.mark.parametrize("name", [n for n in SPECS if get_spec(n).multiple == 1])
def test_frames_smaller_than_the_receptive_field_keep_their_shape(name: str) -> None:
    """"Any frame size" includes slivers below eigen2013's 16×16 kernel (edge-extended, then
    cropped); the other models' frames are padded to their multiple before (FrameRestorer)."""
    net = get_spec(name).build().eval()
    with torch.no_grad():
        for h, w in ((1, 1), (7, 13), (8, 40)):
            assert net(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)


def test_eigen2013_identity_init_starts_near_identity() -> None:
    net = Eigen2013(init="identity").eval()
    x = torch.rand(1, 3, 33, 41)
    with torch.no_grad():
        mse = float(((net(x) - x) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 45.0


def test_drn_index_pooling_matches_torch_maxpool_unpool() -> None:
    x = torch.randn(2, 5, 8, 12)
    x[0, 0, :2, :2] = 1.0  # a tie: torch keeps the first maximum, so must we
    ref_pooled, idx = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    pooled, where = IndexPool()(x)
    values = torch.randn_like(ref_pooled)
    assert torch.equal(pooled, ref_pooled)
    assert torch.equal(unpool(values, where), torch.nn.functional.max_unpool2d(values, idx, 2, 2))


def test_drn_starts_near_identity_and_predicts_a_residual() -> None:
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = _net("drn")(x)
    assert float((y - x).abs().max()) < 0.05


def test_drn_default_init_starts_off_identity() -> None:
    """init=default (configs/train_drn.yaml) gives the R head torch's init: a real residual at step 0."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = get_spec("drn").builder(init="default").eval()(x)
    assert float((y - x).abs().mean()) > 0.01  # identity init: ~5e-4


@pytest.mark.parametrize("name", SPECS)
def test_onnx_export_parity(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = _net(name)
    m = max(get_spec(name).multiple, 8)
    buf = io.BytesIO()
    torchscript_export(net, (torch.rand(1, 3, 4 * m, 5 * m),), buf, opset_version=17,
                       input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 5 * m, 6 * m)  # another size than exported: dynamic H, W work
    with torch.no_grad():
        ref = net(x).numpy()
    got = sess.run(None, {"x": x.numpy()})[0]
    mse = float(np.mean((got - ref) ** 2))
    assert got.shape == ref.shape
    assert mse == 0.0 or 10 * np.log10(1.0 / mse) >= 50.0
