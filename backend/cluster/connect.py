"""Importing Ray with an error that says how to get it: the cluster is optional (`pip install ray`)."""

from __future__ import annotations

import os

from backend.errors import StageError


def import_ray():
    """The `ray` module, or a StageError naming the install command when this Python lacks it."""
    try:
        import ray
    except ImportError as exc:
        raise StageError(f"the cluster needs Ray, which this Python ({_python()}) cannot import ({exc}); "
                         "install it with `pip install ray` (or `pip install 'diffusion-stage[cluster]'`), "
                         "or run without --cluster", code="missing_dependency") from None
    return ray


def _python() -> str:
    import sys

    return sys.executable


LOOPBACK = "127.0.0.1"
PIN_LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps every address it derives on 127.0.0.1


def connect(address: str, local_resources: dict | None = None):
    """Join the Ray cluster at `address` (`host:port`: a head's GCS; `ray://head:10001`: a remote head through
    Ray Client) or, with `auto`, the head named by RAY_ADDRESS (what `ray start --head` tells you to export), else
    a new one-machine cluster of this process's own with every address on loopback. `auto` never joins a
    cluster merely because one runs on this machine (Ray's own address="auto" picks up any, test clusters
    included). `local_resources`: custom resources a new local cluster declares (e.g. {"blender": 1} when
    this machine renders). Returns the ray module. Errors name the address and how to start a head."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    joining = os.environ.get("RAY_ADDRESS") if address == "auto" else address
    try:
        if joining:
            ray.init(address=joining, logging_level="WARNING")
        else:
            pin_loopback()
            ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, logging_level="WARNING",
                     resources=local_resources)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise StageError(f"cannot join the Ray cluster at {joining!r} ({e}); start a head there with "
                         "`ray start --head --port 6379` and give its address (host:6379 or ray://host:10001), "
                         "or --cluster auto (without RAY_ADDRESS) for one on this machine",
                         code="cluster_unreachable") from None
    return ray


def pin_loopback() -> None:
    """Keep a one-machine cluster on 127.0.0.1: Ray otherwise registers this machine's own interface address for
    its nodes (even with node_ip_address=127.0.0.1) and rewrites 127.0.0.1 in addresses to it. The environment
    variable reaches Ray's processes (read when they import ray); this process imported ray already, so the
    flag read from it is set too."""
    os.environ[PIN_LOOPBACK] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
