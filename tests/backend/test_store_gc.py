"""`dstage store gc` and the store size limit on a real store: old or excess jobs go, least recently used
first, with the inputs only they read; a running job never goes; what stays still resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import PYTHON, REPO, dstage, env, write_frames  # noqa: E402

from backend.cli import main  # noqa: E402
from backend.store import Store  # noqa: E402

DAY = 86400


def run(tmp_path: Path, folder: Path, out: str, *extra: str) -> str:
    assert main(["run", "matte", "--in", str(folder), "--out", str(tmp_path / out), "--store",
                 str(tmp_path / "store"), *extra]) == 0
    import json

    return json.loads((tmp_path / out / "take.json").read_text())["job_id"]


def age(store: Path, job_id: str, days: float) -> None:
    """Make a job (and every input file) look last used `days` ago."""
    then = time.time() - days * DAY
    os.utime(store / "jobs" / job_id / "job.json", (then, then))
    for file in (store / "inputs").glob("*/*.npz"):
        os.utime(file, (then, then))


def inputs(store: Path) -> set[str]:
    return {p.stem for p in (store / "inputs").glob("*/*.npz")}


def test_keep_days_removes_old_jobs_and_the_inputs_only_they_read(tmp_path, capsys):
    a = write_frames(tmp_path / "a", 3, 64, seed=1)
    b = write_frames(tmp_path / "b", 3, 64, seed=2)
    old = run(tmp_path, a, "old")
    shared = run(tmp_path, a, "shared", "--set", "refine.feather=3")  # other params, the same input frames
    fresh = run(tmp_path, b, "fresh")
    store = tmp_path / "store"
    inputs_of_a, inputs_of_b = set(), set()
    for job, seen in ((old, inputs_of_a), (fresh, inputs_of_b)):
        seen |= {d for _, d in Store(store).load_job(job).frames}
    for job in (old, shared):
        age(store, job, 40)
    os.utime(store / "jobs" / fresh / "job.json")  # used just now
    for digest in inputs_of_b:
        path = store / "inputs" / digest[:2] / f"{digest}.npz"
        os.utime(path)

    dry = dstage("store", "gc", "--store", str(store), "--keep-days", "30", "--dry-run")
    assert dry.returncode == 0 and "would remove 2 job(s) and 3 input frame(s)" in dry.stdout, dry.stdout
    assert (store / "jobs" / old).is_dir()  # a dry run removes nothing

    assert main(["store", "gc", "--store", str(store), "--keep-days", "30"]) == 0
    assert "removed 2 job(s) and 3 input frame(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (store / "jobs").iterdir()) == [fresh]
    assert inputs(store) == inputs_of_b
    # what stayed resumes without computing; a removed job is simply computed again
    assert run(tmp_path, b, "fresh_again") == fresh
    assert run(tmp_path, a, "old_again") == old


def test_max_gb_keeps_the_most_recently_used_and_never_a_running_job(tmp_path):
    store = tmp_path / "store"
    jobs = [run(tmp_path, write_frames(tmp_path / f"in{i}", 3, 96, seed=10 + i), f"t{i}") for i in range(4)]
    for job, days in zip(jobs, (30, 20, 10, 0)):  # the first is the least recently used
        age(store, job, days)
    age(store, jobs[0], 30)  # and every input file is old (not just written)
    sizes = {j: sum(f.stat().st_size for f in (store / "jobs" / j).rglob("*") if f.is_file()) for j in jobs}
    per_input = sum(f.stat().st_size for f in (store / "inputs").glob("*/*.npz")) / 12
    # the oldest job is running in another process: it holds the job's lock while it computes
    holder = subprocess.Popen([PYTHON, "-c", (
        "import sys, time; from backend.store import Store\n"
        f"with Store({str(store)!r}).running({jobs[0]!r}):\n"
        "    print('holding', flush=True); time.sleep(60)")], cwd=REPO, env=env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        # room for three jobs: the running one has to stay, so the next oldest goes, and only it
        budget = sizes[jobs[0]] + sizes[jobs[2]] + sizes[jobs[3]] + 9 * per_input + 1000
        report = Store(store).collect(max_bytes=int(budget))
    finally:
        holder.kill()
        holder.wait()
    assert report.running == [jobs[0]]
    assert sorted(p.name for p in (store / "jobs").iterdir()) == sorted([jobs[0], jobs[2], jobs[3]])
    # once it stopped running it goes too
    assert Store(store).collect(max_bytes=int(budget - sizes[jobs[0]] - 3 * per_input)).removed_jobs == [jobs[0]]


def test_the_store_limit_applies_after_each_embedded_run(tmp_path):
    store = tmp_path / "store"
    first = run(tmp_path, write_frames(tmp_path / "in_a", 3, 96, seed=5), "a")
    age(store, first, 1)
    second = run(tmp_path, write_frames(tmp_path / "in_b", 3, 96, seed=6), "b", "--store-max-gb", "0.0001")  # 100 kB
    assert sorted(p.name for p in (store / "jobs").iterdir()) == [second]


def test_gc_needs_a_rule(tmp_path, capsys):
    assert main(["store", "gc", "--store", str(tmp_path / "store")]) == 2
    assert "--keep-days" in capsys.readouterr().err
