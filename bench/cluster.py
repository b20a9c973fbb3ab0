"""What the cluster path costs against the direct one, and how a CPU stage scales from 1 to 2 workers.

One job (preview_depth over moving silhouettes, a per-frame stage that splits into frame ranges) runs, each
time into a fresh store, in one run side by side:

    direct        run_job in this process, as `dstage serve` without --cluster does;
    1 worker      the same job through RunnerPool on a local Ray cluster (loopback), one CPU runner;
    2 workers     the same with two runners.

The takes are compared byte for byte (the cluster must not change a pixel). The overhead of the cluster
path is (1 worker - direct), per unit (task) and per frame. Scaling is 1 worker / 2 workers; on a 2-core
machine shared with other work it cannot reach 2.

Last line: `cluster: overhead <T> ms/task, <F> ms/frame; 1 -> 2 workers x<S>; 1 worker / direct time x<R>`
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported (see test_cluster.py)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.ipc.digest import digest_arrays  # noqa: E402
from backend.jobs import identify, run_job  # noqa: E402
from backend.store import JobSpec, Store  # noqa: E402


def silhouette(frame: int, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """A disc that moves and breathes over the frame: colour and its matte."""
    w, h = size
    yy, xx = np.ogrid[:h, :w]
    cx, cy, r = w * (0.3 + 0.002 * frame % 0.4), h * 0.5, h * (0.25 + 0.05 * np.sin(frame / 7))
    alpha = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r).astype(np.float32)
    color = np.zeros((h, w, 3), np.uint8)
    color[..., 0] = (frame * 3) % 255
    return {"color": color, "alpha": alpha}


def make_job(root: Path, count: int, size: tuple[int, int]) -> tuple[Store, JobSpec]:
    store = Store(root)
    frames = []
    for frame in range(1, count + 1):
        arrays = silhouette(frame, size)
        digest = digest_arrays(arrays)
        store.put_input(digest, arrays)
        frames.append((frame, digest))
    spec = JobSpec("preview_depth", {}, frames, size)
    identify(spec)
    return store, spec


def take_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=192)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--chunk", type=int, default=8, help="frames per unit (task)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))

    import ray

    from backend.cluster.pool import RunnerPool

    work = Path(tempfile.mkdtemp(prefix="dstage-bench-cluster-"))
    store, spec = make_job(work / "direct", args.frames, size)
    run_job(*make_job(store.root, args.chunk, (size[0] // 2, size[1] // 2)))  # the same warm-up as the pools'
    direct = timed(lambda: run_job(store, spec))
    take_at = store.job_dir(spec.job_id).relative_to(store.root) / "take"
    reference = take_bytes(store.root / take_at)

    # address="local": a new cluster of our own, even when another Ray runs on this machine (plain ray.init() joins it)
    ray.init(address="local", num_cpus=2, num_gpus=0, _node_ip_address="127.0.0.1", include_dashboard=False,
             logging_level="WARNING")
    try:
        times = {}
        for workers in (1, 2):
            store, spec = make_job(work / f"workers{workers}", args.frames, size)
            pool = RunnerPool(str(store.root), workers=workers, chunk=args.chunk)
            pool.run(*make_job(store.root, args.chunk, (size[0] // 2, size[1] // 2)))  # imports, first calls
            times[workers] = timed(lambda: pool.run(store, spec))
            units = pool.units_run - 1
            pool.close()
            same = take_bytes(store.root / take_at) == reference
            print(f"{workers} worker(s): {times[workers]:.2f} s for {args.frames} frames in {units} units "
                  f"({args.frames / times[workers]:.1f} fps); take equal to direct: {same}")
            if not same:
                raise SystemExit("cluster take differs from the direct run")
    finally:
        ray.shutdown()
    print(f"direct: {direct:.2f} s ({args.frames / direct:.1f} fps) at {size[0]}x{size[1]}")
    units = -(-args.frames // args.chunk)
    overhead = times[1] - direct
    print(f"cluster: overhead {overhead / units * 1000:.1f} ms/task, {overhead / args.frames * 1000:.1f} ms/frame; "
          f"1 -> 2 workers x{times[1] / times[2]:.2f}; 1 worker / direct time x{times[1] / direct:.2f}")


if __name__ == "__main__":
    main()
