"""A job split into units (backend.stages.base.job_units), each run on its own, makes the take of one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.ipc.digest import digest_arrays
from backend.jobs import JobCallbacks, identify, run_job
from backend.stages.base import StageError, job_units
from backend.store import JobSpec, Store

ROOT = Path(__file__).resolve().parents[2]


def silhouettes(count: int, size=(48, 32)) -> list[dict[str, np.ndarray]]:
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for t in range(count):  # a disc that moves and grows: every frame differs
        inside = (xx - 10 - 2 * t) ** 2 + (yy - 16) ** 2 < (6 + t) ** 2
        out.append({"color": np.full((height, width, 3), 40 * (t % 5), np.uint8),
                    "alpha": inside.astype(np.float32)})
    return out


def depth_job(store: Store, count: int, first: int = 1, stage: str = "preview_depth", params=None) -> JobSpec:
    frames = []
    for index, arrays in enumerate(silhouettes(count)):
        digest = digest_arrays(arrays)
        store.put_input(digest, arrays)
        frames.append((first + index, digest))
    spec = JobSpec(stage=stage, params=dict(params or {}), frames=frames, size=(48, 32))
    identify(spec)
    return spec


def take_files(store: Store, spec: JobSpec) -> dict[str, bytes]:
    root = store.job_dir(spec.job_id) / "take"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


PER_FRAME_JOBS = [("preview_depth", {}), ("preview_normal", {}), ("preview_albedo", {}),
                  ("upscale", {"method": "resample", "scale": 2})]


@pytest.mark.parametrize("stage_name, params", PER_FRAME_JOBS)
def test_units_run_apart_in_any_order_make_the_take_of_one_run_and_a_repeat_has_no_units(tmp_path, stage_name,
                                                                                          params):
    whole, split = Store(tmp_path / "whole"), Store(tmp_path / "split")
    spec_whole, spec_split = (depth_job(store, 7, stage=stage_name, params=params) for store in (whole, split))
    assert spec_whole.job_id == spec_split.job_id
    run_job(whole, spec_whole)

    stage, params, _ = identify(spec_split)
    frames = [f for f, _ in spec_split.frames]
    units = job_units(stage, params, frames, frames, chunk=3)
    assert [u.frames for u in units] == [(1, 2, 3), (4, 5, 6), (7,)]
    announced = []
    for unit in reversed(units):  # workers finish in any order
        run_job(split, spec_split, JobCallbacks(on_frame=announced.append), only=set(unit.todo))
    assert sorted(announced) == frames  # each frame computed once
    assert take_files(split, spec_split) == take_files(whole, spec_whole)
    assert {name.split("/")[-1] for name in take_files(whole, spec_whole)} == {f"{f:04d}.png" for f in frames}

    done = split.done_frames(spec_split)
    assert job_units(stage, params, frames, [f for f in frames if f not in done], chunk=3) == []


def test_a_partly_stored_job_keeps_only_the_units_with_missing_frames(tmp_path):
    store = Store(tmp_path)
    spec = depth_job(store, 6)
    stage, params, _ = identify(spec)
    frames = [f for f, _ in spec.frames]
    run_job(store, spec, only={1, 2, 3, 5})
    todo = [f for f in frames if f not in store.done_frames(spec)]
    assert todo == [4, 6]
    units = job_units(stage, params, frames, todo, chunk=2)
    assert [(u.frames, u.todo) for u in units] == [((3, 4), (4,)), ((5, 6), (6,))]


def test_a_stage_that_declares_no_units_runs_whole_and_declared_units_must_cover_the_job():
    class Temporal:
        name = "temporal"

    frames = list(range(10, 20))
    assert [u.frames for u in job_units(Temporal(), None, frames, frames, chunk=2)] == [tuple(frames)]

    class Gaps:
        name = "gaps"

        def units(self, params, frames):
            return [frames[:4], frames[4:]]

    assert [u.todo for u in job_units(Gaps(), None, frames, [12, 18])] == [(12,), (18,)]

    class Broken(Gaps):
        def units(self, params, frames):
            return [frames[:4], frames[3:]]

    with pytest.raises(StageError, match="exactly once"):
        job_units(Broken(), None, frames, frames)
    with pytest.raises(StageError, match="chunk of 1 or more"):
        job_units(Temporal(), None, frames, frames, chunk=0)


def test_without_ray_the_cluster_says_to_pip_install_ray():
    code = ("import sys; sys.modules['ray'] = None\n"  # an import of ray now fails as if it were not installed
            "from backend.cluster.connect import import_ray\n"
            "from backend.errors import StageError\n"
            "try:\n    import_ray()\nexcept StageError as e:\n    print(e.code, e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("missing_dependency ")
    assert "pip install ray" in out.stdout and "--cluster" in out.stdout
