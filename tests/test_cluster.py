"""`streamer cluster`: camera groups as Ray actors on a local 2-node cluster, one node removed."""

from __future__ import annotations

import socket
import errno
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import streamer.cluster.metrics
from streamer.cluster import require_ray
from streamer.cluster.metrics import MergedCollector, MetricsServer, merge_text
from streamer.cluster.plan import plan_groups
from streamer.config import RunConfig
from streamer.errors import ConfigError
from streamer.stats import RunStats


def site(clips: dict[str, Path], weights: Path, names: list[str], **extra: Any) -> RunConfig:
    return RunConfig.model_validate({
        "cameras": [{"name": n, "source": {"url": str(clips["small"]), "loop": True, "realtime": True}}
                    for n in names],
        "model": {"name": str(weights), "arch": "fast"}, "backend": {"threads": 1}, "stats_every_s": 0,
        **extra})


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"cluster mode needs the cluster extra: pip install -e '\.\[cluster\]' in the streamer folder"):
        require_ray()


def test_plan_splits_cameras_and_resolves_sinks(clips: dict[str, Path], fast_weights: Path) -> None:
    cfg = site(clips, fast_weights, ["a", "b", "c"], sinks=["out/{camera}.mkv"],
               cluster={"cameras_per_actor": 2})
    groups = plan_groups(cfg)
    assert [[c.name for c in g.camera_list()] for g in groups] == [["a", "b"], ["c"]]
    assert [s.url for s in groups[1].camera_list()[0].sinks] == ["out/c.mkv"]


def test_plan_refuses_the_view_sink(clips: dict[str, Path], fast_weights: Path) -> None:
    with pytest.raises(ConfigError, match="not served in cluster mode"):
        plan_groups(site(clips, fast_weights, ["a"], sinks=["view"]))
    groups = plan_groups(site(clips, fast_weights, ["a"], sinks=["views/{camera}.mkv"]))  # a file
    assert [s.url for s in groups[0].camera_list()[0].sinks] == ["views/a.mkv"]


def test_cli_sink_replaces_the_site_view(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """configs/site.yaml has `view` (one page for `streamer run`); its documented cluster command
    replaces the site-wide sinks with --sink, as `streamer run` does (session 19: it could not)."""
    from streamer.cli import main
    from streamer.cluster import supervisor

    seen: list[RunConfig] = []

    def fake_run_cluster(cfg: RunConfig, address: str | None, on_poll: Callable[..., None]) -> Any:
        seen.extend(plan_groups(cfg))  # no Ray: the plan is what is checked
        return supervisor.ClusterResult(cameras={}, groups=[], seconds=0.0, interrupted=False)

    monkeypatch.setattr(supervisor, "run_cluster", fake_run_cluster)
    site_yaml = Path(__file__).parents[1] / "configs" / "site.yaml"
    sink = str(tmp_path / "{camera}.mkv")
    assert main(["cluster", "--config", str(site_yaml), "--sink", sink, "--backend", "openvino", "--int8"]) == 0
    cams = [c for g in seen for c in g.camera_list()]
    assert [c.name for c in cams] == ["gate", "yard", "dock"]
    assert [[s.url for s in c.sinks] for c in cams] == [[str(tmp_path / f"{n}.mkv")] for n in ("gate", "yard", "dock")]
    assert {(g.backend.kind, g.backend.int8) for g in seen} == {("openvino", True)}


def test_merged_metrics_keep_cameras_and_nodes_apart() -> None:
    one, two = RunStats(), RunStats()
    one.on_frame_out("a", 0.0)
    two.on_frame_out("b", 0.0)
    two.on_frame_out("b", 0.0)
    text = merge_text([({"node": "n1", "group": "0"}, generate_latest(one.registry).decode()),
                       ({"node": "n2", "group": "1"}, generate_latest(two.registry).decode())])
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    outs = {(s.labels["camera"], s.labels["node"]): s.value for s in fams["streamer_frames_out"].samples
            if s.name.endswith("_total")}
    assert outs == {("a", "n1"): 1.0, ("b", "n2"): 2.0}
    assert text.count("# TYPE streamer_frames_out_total counter") == 1


def test_metrics_server_open_on_loopback_token_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The head's /metrics names every camera: like the view, a wide bind needs $STREAMER_TOKEN."""
    one = RunStats()
    one.on_frame_out("a", 0.0)
    collector = MergedCollector()
    collector.update([({"node": "n1", "group": "0"}, generate_latest(one.registry).decode())])
    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="cluster.metrics_host: binding 0.0.0.0 exposes the cameras' metrics"):
        MetricsServer(collector, "0.0.0.0", 0)
    server = MetricsServer(collector, "127.0.0.1", 0)
    try:
        assert 'camera="a"' in urllib.request.urlopen(server.url, timeout=10).read().decode()
        rebound = urllib.request.Request(server.url, headers={"Host": f"evil.example:{server.port}"})
        with pytest.raises(urllib.error.HTTPError, match="403"):  # DNS rebinding
            urllib.request.urlopen(rebound, timeout=10)
    finally:
        server.close()
    monkeypatch.setenv("STREAMER_TOKEN", "s3cret-token")
    server = MetricsServer(collector, "0.0.0.0", 0)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(url, timeout=10)
        wrong = urllib.request.Request(url, headers={"Authorization": "Bearer nope-nope"})
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(wrong, timeout=10)
        right = urllib.request.Request(url, headers={"Authorization": "bearer s3cret-token"})
        assert 'camera="a"' in urllib.request.urlopen(right, timeout=10).read().decode()
    finally:
        server.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_metrics_url_of_an_ipv6_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL `streamer cluster` prints: `http://::1:9400/metrics` was none."""
    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    server = MetricsServer(MergedCollector(), "::1", 0)
    try:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        assert urllib.request.urlopen(server.url, timeout=10).status == 200
    finally:
        server.close()


def test_a_wide_metrics_bind_without_its_token_fails_before_ray_starts(monkeypatch: pytest.MonkeyPatch,
                                                                      clips: dict[str, Path],
                                                                      fast_weights: Path) -> None:
    """It was checked after Ray had started and every camera group's actor with its files."""
    from streamer.cluster import supervisor

    class NoRay:
        def is_initialized(self) -> bool:
            raise AssertionError("Ray was started")

    monkeypatch.setattr(supervisor, "require_ray", NoRay)
    monkeypatch.delenv("STREAMER_TOKEN", raising=False)
    cfg = site(clips, fast_weights, ["a"], cluster={"metrics_host": "0.0.0.0", "metrics_port": 0})
    with pytest.raises(ConfigError, match="cluster.metrics_host: binding 0.0.0.0 exposes the cameras' metrics"):
        supervisor.run_cluster(cfg)


def test_metrics_server_names_the_setting_at_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port in use says port; an address not on this machine says host (not 'another port')."""
    monkeypatch.setenv("STREAMER_TOKEN", "s3cret-token")
    taken = MetricsServer(MergedCollector(), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=f"cluster.metrics_port {taken.port}: .*choose another port"):
            MetricsServer(MergedCollector(), "127.0.0.1", taken.port)
    finally:
        taken.close()
    with pytest.raises(ConfigError, match="cluster.metrics_host '203.0.113.9': cannot listen there"):
        MetricsServer(MergedCollector(), "203.0.113.9", 0)  # TEST-NET-3: never this machine's

    def refused(*args: Any, **kwargs: Any) -> None:  # as for a non-root user on port 80
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(streamer.cluster.metrics, "make_server", refused)
    with pytest.raises(ConfigError, match="cluster.metrics_port 80: .*ports below 1024 need root; choose another"):
        MetricsServer(MergedCollector(), "127.0.0.1", 80)


def wait_for(cond: Callable[[], bool], poll: Callable[[], Any], timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while True:
        poll()
        if cond():
            return
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.5)


def test_node_removed_mid_run_its_cameras_resume_elsewhere(clips: dict[str, Path], fast_weights: Path) -> None:
    ray = pytest.importorskip("ray", reason="cluster extra (ray) not installed")
    from ray.cluster_utils import Cluster

    from streamer.cluster.supervisor import ClusterRunner

    fast_health = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                   "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False, "_system_config": fast_health})
    worker = cluster.add_node(num_cpus=2)
    cfg = site(clips, fast_weights, ["north", "south"], preprocess={"resize": "96x64"},
               cluster={"cameras_per_actor": 1, "num_cpus": 1, "metrics_port": 0})
    runner = ClusterRunner(cfg, cluster.address)
    cams = runner.camera_status
    try:
        runner.start()
        wait_for(lambda: all(c.get("frames_out", 0) > 3 and c["state"] == "running" for c in cams().values()),
                 runner.poll)
        nodes = {g.node for g in runner.groups}
        assert nodes == {cluster.head_node.node_id, worker.node_id}  # spread over both nodes
        with urllib.request.urlopen(runner.server.url, timeout=10) as resp:
            fams = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        placed = {s.labels["camera"]: s.labels["node"] for s in fams["streamer_frames_out"].samples}
        assert placed == {g.cameras[0]: g.node for g in runner.groups}

        moved = next(g for g in runner.groups if g.node == worker.node_id)
        stayed = next(g for g in runner.groups if g is not moved)
        count = lambda g: cams()[g.cameras[0]].get("frames_out", 0)  # noqa: E731
        before_stayed = count(stayed)
        cluster.remove_node(worker, allow_graceful=False)
        wait_for(lambda: moved.node == cluster.head_node.node_id and moved.state == "running"
                 and count(moved) > 3, runner.poll)
        assert moved.moves == 1 and count(stayed) > before_stayed  # the other camera went on
    finally:
        runner.stop()
        ray.shutdown()
        cluster.shutdown()
