"""ClusterRunner: the head side of `streamer cluster`.

Places one ``CameraGroup`` actor per camera group (``cluster.num_cpus``/``num_gpus`` decide which
nodes can take it; SPREAD puts groups on different nodes first). Ray restarts an actor whose
process or node died, on a node that still has room (``max_restarts``); an actor Ray has given up
on is created again by ``poll``. Every poll gathers status and metrics from all actors into one
``/metrics`` and ``status()``. Without an address Ray starts embedded in this process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from streamer.cluster import require_ray
from streamer.cluster.metrics import MergedCollector, MetricsServer
from streamer.cluster.plan import plan_groups
from streamer.config import RunConfig
from streamer.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class GroupState:
    """What the head knows about one camera group."""

    index: int
    cameras: list[str]
    actor: Any = None
    state: str = "starting"  # starting | running | restarting | finished | lost
    node: str = ""
    host: str = ""
    started_s: float = 0.0
    moves: int = 0  # times it came back on another node
    recreated: int = 0  # times the head had to create it again
    failures: int = 0  # polls in a row whose calls failed with ActorDiedError
    status: dict[str, Any] = field(default_factory=dict)
    metrics: str = ""


class ClusterRunner:
    def __init__(self, cfg: RunConfig, address: str | None = None, *,
                 ray_init: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.address = address
        self.ray_init = ray_init or {}
        self.groups = [GroupState(i, [c.name for c in g.camera_list()]) for i, g in enumerate(plan_groups(cfg))]
        self._configs = plan_groups(cfg)
        self.collector = MergedCollector()
        self.server: MetricsServer | None = None
        self._ray: Any = None
        self._actor_cls: Any = None
        self._started_ray = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, serve_metrics: bool = True) -> None:
        ray = self._ray = require_ray()
        c = self.cfg.cluster
        if serve_metrics:  # first: a port in use, or a wide bind without $STREAMER_TOKEN, fails
            # before Ray and the cameras start (and their files; stop() closes it)
            self.server = MetricsServer(self.collector, c.metrics_host, c.metrics_port)
            log.info("cluster metrics on %s", self.server.url)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": True, **self.ray_init}
            if not self.address:  # an embedded local Ray: no dashboard to start or secure
                kwargs.setdefault("include_dashboard", False)
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise ConfigError(f"ray cluster {self.address!r}: cannot connect ({exc}); start it with "
                                  "`ray start --head` or leave --address out for a local one") from exc
            self._started_ray = True
        from streamer.cluster.actor import CameraGroup

        self._actor_cls = ray.remote(CameraGroup).options(
            num_cpus=c.num_cpus, num_gpus=c.num_gpus, max_restarts=c.max_restarts,
            max_task_retries=0, scheduling_strategy="SPREAD")
        for g in self.groups:
            self._create(g)

    def _create(self, g: GroupState) -> None:
        g.actor = self._actor_cls.remote(self._configs[g.index], g.index)
        g.state = "starting"

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask every actor to finish (files flushed), then end them; shut Ray down if we started it."""
        ray = self._ray
        if ray is None:
            return
        pending = {g.index: g.actor.stop.remote() for g in self.groups if g.actor is not None}
        for i, ref in pending.items():
            try:
                self.groups[i].status = ray.get(ref, timeout=timeout_s)
            except Exception as exc:  # noqa: BLE001  a lost actor has nothing left to flush
                log.warning("group %d: no clean stop (%s)", i, type(exc).__name__)
        for g in self.groups:
            if g.actor is not None:
                ray.kill(g.actor, no_restart=True)
                g.actor = None
        if self.server is not None:
            self.server.close()
            self.server = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- watching -------------------------------------------------------------------------------
    def poll(self, timeout_s: float = 5.0) -> list[GroupState]:
        """One round: status and metrics from every actor; re-create those Ray gave up on.

        An actor whose node died fails the calls in flight once even when Ray restarts it; calls
        made while it restarts wait (time out here). So a group is created again only when its
        actor fails two polls in a row, i.e. Ray will not bring it back (``max_restarts`` spent).
        """
        ray = self._ray
        exc_mod = ray.exceptions
        refs = {g.index: [g.actor.status.remote(), g.actor.metrics.remote()]
                for g in self.groups if g.actor is not None and g.state != "finished"}
        flat = [r for pair in refs.values() for r in pair]
        ready, _ = ray.wait(flat, num_returns=len(flat), timeout=timeout_s) if flat else ([], [])
        done = set(ready)
        for i, pair in refs.items():
            g = self.groups[i]
            if not all(r in done for r in pair):
                self._unreachable(g)
                continue
            try:
                status, metrics = ray.get(pair)
            except exc_mod.ActorDiedError as exc:
                g.failures += 1
                if g.failures < 2:
                    self._unreachable(g)
                    continue
                log.warning("group %d (%s): actor lost for good (%s); creating it again", g.index,
                            ", ".join(g.cameras), str(exc).splitlines()[0][:120])
                g.recreated += 1
                g.failures = 0
                self._create(g)
                continue
            except exc_mod.RayActorError:  # unavailable for now (restarting)
                self._unreachable(g)
                continue
            g.failures = 0
            self._on_status(g, status, metrics)
        self._publish()
        return self.groups

    def _unreachable(self, g: GroupState) -> None:
        if g.state == "starting":
            return  # still being placed or importing; not an outage
        if g.state != "restarting":
            log.warning("group %d (%s): actor unreachable; waiting for Ray to restart it", g.index,
                        ", ".join(g.cameras))
        g.state, g.metrics = "restarting", ""

    def _on_status(self, g: GroupState, status: dict[str, Any], metrics: str) -> None:
        if g.node and status["node"] != g.node:
            g.moves += 1
            log.warning("group %d (%s) moved from node %s to %s", g.index, ", ".join(g.cameras),
                        g.node[:8], status["node"][:8])
        elif g.state == "restarting":
            log.info("group %d (%s) is back on node %s", g.index, ", ".join(g.cameras), status["node"][:8])
        g.node, g.host, g.started_s, g.status, g.metrics = (status["node"], status["host"],
                                                             status["started_s"], status, metrics)
        g.state = "running" if status["running"] else "finished"

    def _publish(self) -> None:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("streamer_cluster_group_up", "1 while the camera group's actor answers",
                               labels=["group", "node"])
        moves = GaugeMetricFamily("streamer_cluster_group_moves", "Times the group came back on another node",
                                  labels=["group"])
        for g in self.groups:
            up.add_metric([str(g.index), g.node], 1.0 if g.state == "running" else 0.0)
            moves.add_metric([str(g.index)], float(g.moves))
        parts = [({"node": g.node, "group": str(g.index)}, g.metrics) for g in self.groups if g.metrics]
        self.collector.update(parts, [up, moves])

    def camera_status(self) -> dict[str, dict[str, Any]]:
        """Every camera's last known counters, with the node and state of its group."""
        out = {}
        for g in self.groups:
            for name in g.cameras:
                cam = dict(g.status.get("cameras", {}).get(name, {}))
                out[name] = {**cam, "group": g.index, "node": g.node, "state": g.state}
        return out

    @property
    def finished(self) -> bool:
        return all(g.state == "finished" for g in self.groups)


@dataclass
class ClusterResult:
    cameras: dict[str, dict[str, Any]]
    groups: list[GroupState]
    seconds: float
    interrupted: bool


def run_cluster(cfg: RunConfig, address: str | None = None, *, stop: threading.Event | None = None,
                on_poll: Callable[[ClusterRunner], None] | None = None,
                ray_init: dict[str, Any] | None = None) -> ClusterResult:
    """Run the site on Ray until every group finished (files), ``stop`` or Ctrl-C."""
    stop = stop or threading.Event()
    runner = ClusterRunner(cfg, address, ray_init=ray_init)
    t0 = time.monotonic()
    interrupted = False
    try:
        runner.start()
        while not stop.is_set():
            runner.poll()
            if on_poll:
                on_poll(runner)
            if runner.finished:
                break
            stop.wait(cfg.cluster.poll_s)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        runner.stop()
    return ClusterResult(runner.camera_status(), runner.groups, time.monotonic() - t0, interrupted)
