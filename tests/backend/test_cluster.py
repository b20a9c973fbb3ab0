"""Jobs on a real local Ray cluster: worker nodes on loopback with one logical GPU each (issue 17)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.backend.cluster_fixtures import LOOPBACK, loopback_cluster  # noqa: I001  (first: pins Ray to loopback)

import ray  # the cluster extra, installed by `make setup`

from backend.cluster.pool import RunnerPool
from backend.errors import Cancelled
from backend.ipc.digest import digest_arrays
from backend.ipc.take import Take
from backend.jobs import JobCallbacks, identify, run_job
from backend.store import JobSpec, Store
from tests.backend.spine_fixtures import Backend, dstage, frame_files
from tests.backend.test_job_units import depth_job, silhouettes, take_files
from tests.backend.test_server import Recorder


@pytest.fixture(scope="module")
def cluster():
    with loopback_cluster([{"num_cpus": 1, "num_gpus": 1}] * 3) as made:
        yield made


def test_every_node_is_on_loopback(cluster):
    live = [n for n in ray.nodes() if n["Alive"]]
    assert len(live) == 4
    assert {n["NodeManagerAddress"] for n in live} == {LOOPBACK}
    assert ray.cluster_resources().get("GPU") == 3


@pytest.fixture
def pools():
    """Makes RunnerPools and ends their runners after the test, so the next test finds every GPU free."""
    made: list[RunnerPool] = []
    yield lambda *args, **kw: made.append(RunnerPool(*args, **kw)) or made[-1]
    for pool in made:
        pool.close()


def test_a_job_over_three_workers_equals_the_embedded_run_and_a_repeat_computes_nothing(cluster, pools, tmp_path):
    alone, spread = Store(tmp_path / "alone"), Store(tmp_path / "spread")
    spec_alone, spec = depth_job(alone, 9), depth_job(spread, 9)
    run_job(alone, spec_alone)

    pool = pools(str(spread.root), chunk=2)
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


class Silhouettes:
    """Colour + alpha frames (what preview_depth takes), shaped like spine_fixtures.FrameSet for Recorder.submit."""

    def __init__(self, count: int, alpha: bool = True):
        self.size = (48, 32)
        self.arrays = {i + 1: a if alpha else {"color": a["color"]} for i, a in enumerate(silhouettes(count))}
        self.digests = {frame: digest_arrays(a) for frame, a in self.arrays.items()}

    def read(self, frame: int) -> dict:
        return self.arrays[frame]


@pytest.fixture
def served(cluster, tmp_path):
    """`dstage serve --cluster ADDRESS` in another process, its jobs on the cluster's workers."""
    handle, _ = cluster
    backend = Backend(tmp_path / "store", None, "--cluster", handle.address).start()
    rec = Recorder(backend.url)
    yield backend, rec
    rec.close()
    backend.stop()


def test_dstage_serve_cluster_spreads_a_job_and_the_client_sees_it_as_before(served, tmp_path):
    backend, rec = served
    ping = dstage("ping", "--server", backend.url)
    assert ping.returncode == 0, ping.stderr
    assert "cluster: 3 workers on 3 nodes" in ping.stdout and "3 GPUs" in ping.stdout, ping.stdout

    frames = Silhouettes(9)
    job_id = rec.submit(frames, {}, stage="preview_depth")
    assert rec.event("done", job_id).get("frames") == list(range(1, 10))
    assert len(rec.events("frame", job_id)) == 9 and rec.events("progress", job_id)
    alone = Store(tmp_path / "alone")
    for frame, arrays in frames.arrays.items():
        alone.put_input(frames.digests[frame], arrays)
    spec = JobSpec("preview_depth", {}, sorted(frames.digests.items()), frames.size)
    identify(spec)
    assert frame_files(backend.store / "jobs" / job_id / "take") == frame_files(run_job(alone, spec).root)


def test_a_workers_error_and_a_cancel_reach_the_client(served):
    backend, rec = served
    failing = rec.submit(Silhouettes(4, alpha=False), {}, stage="preview_depth")  # no matte: the worker refuses
    error = rec.event("error", failing)
    assert "needs an alpha layer" in error.get("message") and "matte stage" in error.get("message")

    running = rec.submit(Silhouettes(600), {"relief": 0.5}, stage="preview_depth")
    rec.event("frame", running)
    rec.client.send("cancel", {"job_id": running})
    rec.event("cancelled", running)
    take = Take.open(backend.store / "jobs" / running / "take")
    assert 0 < sum(take.is_complete(f) for f in take.info.frames) < 600
    assert rec.call("ping").type == "pong"  # still serving


def test_killing_a_worker_node_mid_job_loses_nothing(cluster, pools, tmp_path):
    handle, nodes = cluster
    alone, spread = Store(tmp_path / "alone"), Store(tmp_path / "spread")
    spec_alone, spec = depth_job(alone, 12), depth_job(spread, 12)
    run_job(alone, spec_alone)

    pool = pools(str(spread.root), chunk=1)
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
    assert pool.summary()["workers"] == 2

    # the machine comes back (or another joins): the next job finds its GPU and runs on three workers again
    nodes.append(handle.add_node(num_cpus=1, num_gpus=1, node_ip_address=LOOPBACK))
    handle.wait_for_nodes()
    later = depth_job(spread, 6, params={"relief": 0.5})
    pool.run(spread, later)
    assert len(pool.alive) == 3 and pool.summary() | {"hosts": None} == {"workers": 3, "nodes": 3, "gpus": 3,
                                                                          "hosts": None}
    assert {w["node"] for w in pool.describe()} >= {nodes[-1].node_id}


FRAMES_IN_ONE_UNIT = 1000  # a unit of tiny frames must outlast a few cancel polls on a loaded machine


def test_a_cancel_stops_the_unit_a_worker_is_computing(cluster, pools, tmp_path):
    """The whole job is one unit on one worker, so only the runner itself can stop it before its last frame: the
    pool waits for its runners after a cancel, and without the stop reaching the runner every frame is computed."""
    store = Store(tmp_path / "store")
    spec = depth_job(store, FRAMES_IN_ONE_UNIT)
    take_dir = store.job_dir(spec.job_id) / "take"

    def stored() -> int:
        take = Take.open(take_dir)
        return sum(take.is_complete(f) for f, _ in spec.frames)

    pool = pools(str(store.root), chunk=FRAMES_IN_ONE_UNIT)
    with pytest.raises(Cancelled):  # the artist cancels once the worker has stored a frame
        pool.run(store, spec, JobCallbacks(is_cancelled=lambda: (take_dir / "take.json").is_file() and stored() > 0))
    after_cancel = stored()
    assert 0 < after_cancel < FRAMES_IN_ONE_UNIT
    assert pool.summary()["workers"] == 3  # a cancel ends no runner
    again = []
    pool.run(store, spec, JobCallbacks(on_frame=again.append))  # resubmitted: computes only what is missing
    assert len(again) == FRAMES_IN_ONE_UNIT - after_cancel


AUTO_PROBE = """
import json, subprocess
from backend.cluster.connect import connect
ray = connect("auto")
node = ray.nodes()[0]
ports = {ray.get_runtime_context().gcs_address.rsplit(":", 1)[1], str(node["NodeManagerPort"]),
         str(node["ObjectManagerPort"])}
listening = [line.split()[3] for line in subprocess.run(["ss", "-tln"], capture_output=True, text=True).stdout
             .splitlines()[1:] if line.split()[3].rsplit(":", 1)[1] in ports]
print(json.dumps({"nodes": [n["NodeManagerAddress"] for n in ray.nodes()],
                  "gcs": ray.get_runtime_context().gcs_address, "listening": listening}))
ray.shutdown()
"""


def test_cluster_auto_starts_its_own_on_loopback_even_beside_another(cluster):
    """`--cluster auto` beside a running cluster (this module's: Ray's own address="auto" would join it) in a
    process that did not pin Ray to loopback itself: a cluster of its own, every address and port on 127.0.0.1."""
    handle, _ = cluster
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")}
    out = subprocess.run([sys.executable, "-c", AUTO_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["gcs"] != handle.address and seen["gcs"].startswith(LOOPBACK + ":")
    assert seen["nodes"] == [LOOPBACK]
    assert len(seen["listening"]) >= 3 and all(a.replace("[::ffff:", "").startswith(LOOPBACK) for a in seen["listening"])


def test_ray_connects_only_through_loopback(cluster):
    handle, _ = cluster
    assert handle.address.startswith(LOOPBACK + ":")
    out = subprocess.run(["ss", "-tn"], capture_output=True, text=True).stdout
    port = handle.address.rsplit(":", 1)[1]
    peers = [line.split()[4] for line in out.splitlines()[1:] if len(line.split()) > 4 and f":{port}" in line]
    assert peers and all(peer.replace("[::ffff:", "").startswith(LOOPBACK) for peer in peers)  # v4 or v4-mapped
