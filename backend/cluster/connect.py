"""Importing Ray with an error that says how to get it: the cluster is optional (`pip install ray`)."""

from __future__ import annotations

from backend.errors import StageError


def import_ray():
    """The `ray` module, or a StageError naming the install command when this Python lacks it."""
    try:
        import ray
    except ImportError as exc:
        raise StageError(f"the cluster needs Ray, which this Python ({_python()}) cannot import ({exc}); "
                         "install it with `pip install ray` (or `pip install 'diffusion-stage[cluster]'`), "
                         "or serve without --cluster", code="missing_dependency") from None
    return ray


def _python() -> str:
    import sys

    return sys.executable


LOOPBACK = "127.0.0.1"


def connect(address: str, local_resources: dict | None = None):
    """Join the Ray cluster at `address` (`auto`: the one `ray start --head` runs on this machine, else a new
    local one on loopback; `ray://head:10001`: a remote head through Ray Client; `host:port`: a head's GCS).
    `local_resources`: custom resources a new local cluster declares (e.g. {"blender": 1} when this machine
    renders). Returns the ray module. Errors name the address and how to start a head."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address == "auto":
            try:
                ray.init(address="auto", logging_level="WARNING")
            except ConnectionError:  # no head on this machine: start one, every address on loopback
                ray.init(_node_ip_address=LOOPBACK, include_dashboard=False, logging_level="WARNING",
                         resources=local_resources)
        else:
            ray.init(address=address, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise StageError(f"cannot join the Ray cluster at {address!r} ({e}); start a head there with "
                         "`ray start --head --port 6379` and give its address (host:6379 or ray://host:10001), "
                         "or --cluster auto for one on this machine", code="cluster_unreachable") from None
    return ray
