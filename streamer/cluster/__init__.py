"""Scale-out over a Ray cluster: camera groups as Ray actors, one merged ``/metrics`` at the head.

Ray is an optional extra and is imported only here, on use (``require_ray``).

    plan.py        the site's cameras -> one RunConfig per actor (checks what cannot run remote)
    actor.py       CameraGroup: runs one ``streamer.site.Site`` inside a Ray actor
    metrics.py     merges the actors' Prometheus text into one exposition, labelled by node
    supervisor.py  ClusterRunner: places actors, watches them, re-creates the lost, serves /metrics
"""

from __future__ import annotations

from types import ModuleType

from streamer.errors import ConfigError, install_extra

RAY_MISSING = f"cluster mode needs the cluster extra: {install_extra('cluster')}"


def require_ray() -> ModuleType:
    """``import ray`` or one line saying how to get it."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise ConfigError(RAY_MISSING) from exc
    return ray


__all__ = ["RAY_MISSING", "require_ray"]
