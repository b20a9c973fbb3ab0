"""A shot's final render spread over the cluster: frame chunks as Ray tasks on nodes that have Blender.

Nodes with a Blender environment advertise the Ray resource `blender` (`ray start ... --resources
'{"blender": 1}'`: one per concurrent render the node takes). Each task runs
`blender_addon.headless.render_chunk` in that Blender's Python for its frames, writing into the shot's
folder, which every node mounts at the same path. Frames already rendered are never sent; a task whose node
dies is retried by Ray on another node, and since every frame is renamed into place when whole, the retry
renders only what is missing.

    python -m backend.cluster.render --cluster ADDRESS --blend OUT/shot.blend --frames 1-48 --out OUT/frames \
        --blender-python /opt/blender/python/bin/python3.11
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from backend.cli import positive_int
from backend.cluster.connect import connect, import_ray
from backend.errors import StageError
from backend.sources import SourceError, parse_range

REPO = Path(__file__).resolve().parents[2]
RESOURCE = "blender"


def missing_chunks(folder: Path, first: int, last: int, chunk: int) -> list[tuple[int, int]]:
    """Runs of at most `chunk` consecutive frames whose PNG is not in `folder` yet."""
    todo = [f for f in range(first, last + 1) if not (folder / f"{f:04d}.png").is_file()]
    runs: list[list[int]] = []
    for frame in todo:
        if runs and frame == runs[-1][-1] + 1 and len(runs[-1]) < chunk:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return [(run[0], run[-1]) for run in runs]


def render_chunk(blend: str, first: int, last: int, folder: str, blender_python: str) -> dict:
    """One task: Blender's Python renders frames first..last of the saved shot into `folder`."""
    done = subprocess.run(
        [blender_python, "-m", "blender_addon.headless.render_chunk", blend, "--frames", f"{first}-{last}",
         "--out", folder], cwd=REPO, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise StageError(f"frames {first}-{last} did not render ({' / '.join(tail)})", code="render_failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render_on_cluster(blend: Path, first: int, last: int, folder: Path, *, blender_python: str, chunk: int = 8,
                      progress=None) -> dict:
    """Render the missing frames of first..last on the cluster's Blender nodes; returns counts as
    render.render_frames does. Raises StageError when no node has Blender or a chunk cannot render."""
    ray = import_ray()
    if not ray.cluster_resources().get(RESOURCE):
        raise StageError(f"no node of this cluster offers the `{RESOURCE}` resource; start the render nodes with "
                         f"`ray start --address HEAD --resources '{{\"{RESOURCE}\": 1}}'`", code="no_render_nodes")
    folder.mkdir(parents=True, exist_ok=True)
    for partial in folder.glob(".*.tmp.png"):  # what an interrupted render was writing; chunks leave them be
        partial.unlink(missing_ok=True)
    chunks = missing_chunks(folder, first, last, chunk)
    task = ray.remote(num_cpus=0, resources={RESOURCE: 1}, max_retries=3)(render_chunk)
    pending = {task.remote(str(blend), a, b, str(folder), blender_python): (a, b) for a, b in chunks}
    total = last - first + 1
    rendered = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        a, b = pending.pop(ready[0])
        try:
            counts = ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            for other in pending:  # the shot has failed: free the render nodes rather than finish the rest
                ray.cancel(other)
            raise (e.cause if isinstance(e.cause, StageError) else e) from None
        rendered += counts["rendered"]
        if progress:
            progress(a, b, counts)
    return {"frames": total, "kept": total - sum(b - a + 1 for a, b in chunks), "rendered": rendered}


def _env() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.cluster.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True, help="Ray address: auto, host:6379 or ray://host:10001")
    parser.add_argument("--blend", required=True, type=Path)
    parser.add_argument("--frames", required=True, help="FIRST-LAST")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--blender-python", required=True, help="the Blender Python on the render nodes")
    parser.add_argument("--chunk", type=positive_int, default=8, help="frames per task")
    args = parser.parse_args(argv)
    try:
        first, last = parse_range(args.frames)
    except SourceError as e:
        parser.error(f"--frames: {e}")
    try:
        connect(args.cluster, local_resources={RESOURCE: 1})
        counts = render_on_cluster(args.blend.resolve(), first, last, args.out.resolve(),
                                   blender_python=args.blender_python, chunk=args.chunk,
                                   progress=lambda a, b, c: print(f"frames {a}-{b}: {c['rendered']} rendered",
                                                                  file=sys.stderr, flush=True))
    except StageError as e:
        print(f"cluster render: {e}", file=sys.stderr)
        return 1
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
