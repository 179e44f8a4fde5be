"""Security defaults: services listen on loopback unless told otherwise (and then need a token),
weights load without pickle, YAML without object tags, and no shell ever sees user input.
The source checks walk the AST of every module, so new code is held to the same rules."""

from __future__ import annotations

import ast
import inspect
import socket
from pathlib import Path

import pytest

import streamer
from streamer.errors import WeightsError

PACKAGE = Path(streamer.__file__).resolve().parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(func: ast.expr) -> str:
    """``os.system`` -> "os.system", ``subprocess.run`` -> "subprocess.run", ``run`` -> "run"."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.AST]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text(), str(p)) for p in MODULES}


def test_no_shell_and_no_command_strings(trees: dict[str, ast.AST]) -> None:
    bad = []
    for name, tree in trees.items():
        for call in _calls(tree):
            fn = _name(call.func)
            builtin = isinstance(call.func, ast.Name)  # eval(...), not module.eval()
            if fn in {"os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl"} or (
                    builtin and fn in {"eval", "exec"}):
                bad.append(f"{name}:{call.lineno} {fn}")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in call.keywords):
                bad.append(f"{name}:{call.lineno} shell=")
            command = call.args[0] if call.args else None  # an argv list, never one string to split
            if fn.startswith("subprocess.") and isinstance(command, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                bad.append(f"{name}:{call.lineno} {fn} with a command string")
    assert not bad, bad


def _safe_loader(module: str, call: ast.Call) -> bool:
    """``yaml.load(text, Loader=X)`` with X a module-level subclass of yaml.SafeLoader (e.g. the
    config's duplicate-key check): no object tags, as safe as yaml.safe_load."""
    import importlib

    import yaml

    loader = next((k.value for k in call.keywords if k.arg == "Loader"), None)
    if not isinstance(loader, ast.Name):
        return False
    mod = importlib.import_module("streamer." + module.removesuffix(".py").replace("/", "."))
    cls = getattr(mod, loader.id, None)
    return isinstance(cls, type) and issubclass(cls, yaml.SafeLoader)


def test_weights_and_configs_never_unpickle(trees: dict[str, ast.AST]) -> None:
    bad = []
    for name, tree in trees.items():
        for call in _calls(tree):
            fn = _name(call.func)
            if fn == "torch.load" and not any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                                              and k.value.value is True for k in call.keywords):
                bad.append(f"{name}:{call.lineno} torch.load without weights_only=True")
            if fn == "yaml.load" and _safe_loader(name, call):
                continue
            if fn in {"pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "yaml.full_load"}:
                bad.append(f"{name}:{call.lineno} {fn}")
            if fn in {"numpy.load", "np.load"} and any(
                    k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in call.keywords):
                bad.append(f"{name}:{call.lineno} {fn} with allow_pickle")
    assert not bad, bad


def test_pickled_weights_are_refused_unread(tmp_path: Path) -> None:
    from streamer.models import get_spec
    from streamer.models.weights import load_weights

    trap = tmp_path / "fast.pth"
    trap.write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")  # a pickle that would run a command
    with pytest.raises(WeightsError, match="pickled weights are not loaded for safety"):
        load_weights(get_spec("fast").build(), trap)


def test_no_server_defaults_to_all_interfaces(trees: dict[str, ast.AST]) -> None:
    """Every ``host``/``bind`` parameter default in the package is a loopback address."""
    bad = []
    for name, tree in trees.items():
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            args = fn.args.args[len(fn.args.args) - len(fn.args.defaults):] + fn.args.kwonlyargs
            defaults = fn.args.defaults + [d for d in fn.args.kw_defaults]
            for arg, default in zip(args, defaults):
                if (arg.arg in {"host", "bind", "address"} and isinstance(default, ast.Constant)
                        and isinstance(default.value, str) and default.value not in LOOPBACK):
                    bad.append(f"{name}:{fn.lineno} {fn.name}({arg.arg}={default.value!r})")
    assert not bad, bad


def test_view_listens_on_loopback_by_default() -> None:
    from streamer.sinks.view import DEFAULT_HOST, ViewSink, parse_view_spec

    assert parse_view_spec("view") == ("127.0.0.1", 8080) and parse_view_spec("view:9000")[0] == "127.0.0.1"
    assert inspect.signature(ViewSink).parameters["host"].default == DEFAULT_HOST == "127.0.0.1"
    sink = ViewSink(port=0)
    try:
        with socket.create_connection(("127.0.0.1", sink.port), timeout=5):
            pass
        other = _non_loopback_address()
        if other:  # the same port on another interface of this host is closed
            with pytest.raises(OSError):
                socket.create_connection((other, sink.port), timeout=2).close()
    finally:
        sink.close()


def test_rtsp_server_listens_on_loopback_by_default() -> None:
    from streamer.sinks.rtsp_serve import parse_url

    assert parse_url("rtsp-serve://:8554/clean")[0] == "127.0.0.1"
    assert parse_url("rtsp-serve:///clean") == ("127.0.0.1", 8554, "/clean")


@pytest.mark.parametrize("spec", ["view://0.0.0.0:0", "rtsp-serve://0.0.0.0:0/clean"])
def test_wide_bind_needs_a_token(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamer.errors import ConfigError
    from streamer.sinks import open_sink

    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="without an access token"):
        open_sink(spec)


def _non_loopback_address() -> str | None:
    """An address of this host other than loopback (None in a sandbox without one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route is chosen
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr
