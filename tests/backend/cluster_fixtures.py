"""A real Ray cluster on this machine for tests: a head and worker nodes, every address pinned to loopback."""

from __future__ import annotations

import os
from contextlib import contextmanager

# Before ray is imported: every address Ray derives for this machine is then 127.0.0.1, never the machine's
# own interface (with it unset the head registered e.g. 192.0.2.2 despite node_ip_address=127.0.0.1).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

LOOPBACK = "127.0.0.1"


@contextmanager
def loopback_cluster(workers: list[dict], **init):
    """(cluster, worker nodes): a head with one CPU and no GPU, plus one node per dict of `workers` (its
    ray.cluster_utils add_node arguments), this process connected as the driver (`init`: ray.init's extras).
    Everything is shut down on exit, so no Ray process outlives the tests."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False})
    nodes = [cluster.add_node(node_ip_address=LOOPBACK, **node) for node in workers]
    ray.init(address=cluster.address, **init)
    cluster.wait_for_nodes()
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()
