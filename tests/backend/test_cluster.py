"""Jobs on a real local Ray cluster: worker nodes on loopback with one logical GPU each (issue 17)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

# Before ray is imported: every address Ray derives for this machine is then 127.0.0.1, never the machine's
# own interface (Ray reads this at import; with it unset the head registers e.g. 192.0.2.2 despite
# node_ip_address=127.0.0.1).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

ray = pytest.importorskip("ray", reason="the cluster extra is installed by `make setup` (pip install ray)")

from ray.cluster_utils import Cluster  # noqa: E402

from backend.cluster.pool import RunnerPool  # noqa: E402
from backend.jobs import JobCallbacks, run_job  # noqa: E402
from backend.store import Store  # noqa: E402
from tests.backend.test_job_units import depth_job, take_files  # noqa: E402

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address=LOOPBACK) for _ in range(3)]
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_every_node_is_on_loopback(cluster):
    live = [n for n in ray.nodes() if n["Alive"]]
    assert len(live) == 4
    assert {n["NodeManagerAddress"] for n in live} == {LOOPBACK}
    assert ray.cluster_resources().get("GPU") == 3


def test_a_job_over_three_workers_equals_the_embedded_run_and_a_repeat_computes_nothing(cluster, tmp_path):
    alone, spread = Store(tmp_path / "alone"), Store(tmp_path / "spread")
    spec_alone, spec = depth_job(alone, 9), depth_job(spread, 9)
    run_job(alone, spec_alone)

    pool = RunnerPool(str(spread.root), chunk=2)
    assert len(pool.runners) == 3  # one per GPU
    assert len({w["node"] for w in pool.describe()}) == 3
    announced = []
    pool.run(spread, spec, JobCallbacks(on_frame=announced.append))
    assert sorted(announced) == [f for f, _ in spec.frames]
    assert take_files(spread, spec) == take_files(alone, spec_alone)
    assert pool.units_run == 5

    again = []
    pool.run(spread, spec, JobCallbacks(on_frame=again.append))
    assert again == [] and pool.units_run == 5


def test_killing_a_worker_node_mid_job_loses_nothing(cluster, tmp_path):
    handle, nodes = cluster
    alone, spread = Store(tmp_path / "alone"), Store(tmp_path / "spread")
    spec_alone, spec = depth_job(alone, 12), depth_job(spread, 12)
    run_job(alone, spec_alone)

    pool = RunnerPool(str(spread.root), chunk=1)
    victim = pool.describe()[0]
    killed = []

    def on_frame(frame):
        announced.append(frame)
        if not killed:  # the first unit is in: the machine of runner 0 goes away, its processes with it
            node = next(n for n in nodes if n.node_id == victim["node"])
            handle.remove_node(node, allow_graceful=False)
            os.kill(victim["pid"], signal.SIGKILL)  # a lost machine takes its workers too, not only the raylet
            killed.append(node)

    announced = []
    pool.run(spread, spec, JobCallbacks(on_frame=on_frame))
    assert killed and len(pool.alive) == 2
    assert sorted(announced) == [f for f, _ in spec.frames]
    assert take_files(spread, spec) == take_files(alone, spec_alone)


def test_ray_connects_only_through_loopback(cluster):
    handle, _ = cluster
    assert handle.address.startswith(LOOPBACK + ":")
    out = subprocess.run(["ss", "-tn"], capture_output=True, text=True).stdout
    port = handle.address.rsplit(":", 1)[1]
    peers = [line.split()[4] for line in out.splitlines()[1:] if len(line.split()) > 4 and f":{port}" in line]
    assert peers and all(peer.replace("[::ffff:", "").startswith(LOOPBACK) for peer in peers)  # v4 or v4-mapped
