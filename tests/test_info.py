"""`streamer info`: what this machine can run, as text and JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest

from streamer.backends import BACKENDS
from streamer.cli import main


def test_info_json_lists_every_backend(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    (tmp_path / "int8").mkdir()
    (tmp_path / "int8" / "fast-abc.onnx").write_bytes(b"x")
    (tmp_path / "int8" / "fast-abc.123.tmp.onnx").write_bytes(b"x")  # a quantization in progress
    assert main(["info", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["backends"]) == list(BACKENDS)
    assert r["backends"]["torch"]["available"] and "cpu" in r["backends"]["torch"]["devices"]
    assert "CPUExecutionProvider" in r["backends"]["onnxruntime"]["providers"]
    assert r["int8_cache"] == {"dir": str(tmp_path / "int8"), "models": 1}
    assert r["versions"]["torch"] and r["host"]["cpu_count"] >= 1
    for name, extra in (("openvino", "openvino"), ("tensorrt", "tensorrt")):
        if importlib.util.find_spec(name) is None:
            entry = r["backends"][name]
            assert not entry["available"] and f"pip install -e '.[{extra}]'" in entry["reason"]


def test_info_text_says_yes_or_no_per_backend(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in BACKENDS:
        line = next(ln for ln in out.splitlines() if ln.startswith(f"backend {name}"))
        assert line.split()[2] in ("yes", "no")
        assert line.split()[2] == "yes" or "(" in line  # a 'no' says why
    assert next(ln for ln in out.splitlines() if ln.startswith("backend torch")).split()[2] == "yes"


def test_tensorrt_without_gpu_explains_itself(monkeypatch) -> None:
    """TensorRT installed but no GPU (a CPU build box): 'no', with the reason, not a crash."""
    import sys
    import types

    from streamer import sysinfo

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0"))
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    entry = sysinfo.backends()["tensorrt"]
    if entry.get("version") != "10.3.0":
        pytest.skip("a real TensorRT is installed")
    assert entry == {"available": False, "version": "10.3.0",
                     "reason": "TensorRT is installed but torch sees no CUDA GPU"}


def test_cpu_features_read_from_x86_and_arm_cpuinfo() -> None:
    """The flags that decide INT8/float kernels, best first, from either architecture's format."""
    from streamer.commands.info import _isa_line
    from streamer.sysinfo import cpu_isa

    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 fma\n"
    jetson = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\n"
    assert cpu_isa(x86) == ["avx512_vnni", "avx512_bf16", "avx512f", "avx2"]
    assert cpu_isa(jetson) == ["asimddp", "asimd"]
    assert cpu_isa("model name\t: ?\n") == []
    assert _isa_line(cpu_isa(x86)).endswith("(INT8 dot products)")
    assert _isa_line(["avx2"]) == "avx2 (no INT8 dot-product instructions)"
    assert _isa_line([]) == "unknown"


def test_versions_name_the_checkout_commit() -> None:
    """A bench report from a checkout traces to its code (an installed copy has its version)."""
    import subprocess
    from pathlib import Path

    from streamer.sysinfo import versions

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=root)
    if done.returncode:  # no git, or a checkout git refuses (another user's: "dubious ownership")
        pytest.skip(f"git cannot read this checkout: {done.stderr.strip()[:80]}")
    assert versions()["commit"].split("+")[0] == done.stdout.strip()
