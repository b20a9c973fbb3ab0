"""Keeping the job store in bounds: `dstage store gc` and the store size limit (`--store-max-gb`).

A job is "used" when it is submitted or runs (its job.json's modification time). Collection removes the
jobs unused for more than `keep_days`, then the least recently used ones until the store fits in
`max_bytes`, then every input frame no remaining job reads. It never removes a running job (the runner
holds a shared lock on the job while it computes; collection skips any job whose lock it cannot take) nor an
input written in the last GRACE_S seconds (an embedded run stores its frames just before saving its job,
and a submission refreshes the inputs it reuses). Removal is atomic per job (renamed away, then deleted),
so a reader sees a job whole or not at all; a removed job is simply computed again if it is asked for.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

GRACE_S = 600.0
LOCK_NAME = ".running"


@dataclass
class GcReport:
    removed_jobs: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    removed_inputs: int = 0
    kept_jobs: int = 0
    kept_bytes: int = 0
    running: list[str] = field(default_factory=list)   # jobs kept because they were running

    def summary(self, dry_run: bool = False) -> str:
        verb = "would remove" if dry_run else "removed"
        running = f"; {len(self.running)} running job(s) left alone" if self.running else ""
        return (f"{verb} {len(self.removed_jobs)} job(s) and {self.removed_inputs} input frame(s), "
                f"{gigabytes(self.removed_bytes)}; kept {self.kept_jobs} job(s), {gigabytes(self.kept_bytes)}{running}")


def gigabytes(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e7 else f"{count / 1e6:.1f} MB"


@contextmanager
def running(job_dir: Path) -> Iterator[None]:
    """Held while a job computes: collection never removes a job whose lock it cannot take."""
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class _Job:
    job_id: str
    path: Path
    used: float
    size: int
    inputs: set[str]


def collect(root: Path, *, keep_days: float | None = None, max_bytes: int | None = None, dry_run: bool = False,
            keep: tuple[str, ...] = (), now: float | None = None) -> GcReport:
    """Remove jobs unused for `keep_days`, then the least recently used until the store fits `max_bytes`
    (never those in `keep`: the job just computed, whose frames a client may still fetch), then every input
    no remaining job reads."""
    now = time.time() if now is None else now
    jobs = _jobs(root)
    inputs = _inputs(root)
    refs: dict[str, int] = {}
    for job in jobs:
        for digest in job.inputs:
            refs[digest] = refs.get(digest, 0) + 1
    report = GcReport()
    total = sum(j.size for j in jobs) + sum(size for size, _ in inputs.values())
    doomed = []
    for job in sorted(jobs, key=lambda j: j.used):   # least recently used first
        old = keep_days is not None and now - job.used > keep_days * 86400
        over = max_bytes is not None and total > max_bytes
        if not (old or over) or job.job_id in keep:
            continue
        if not _try_remove(job, dry_run):
            report.running.append(job.job_id)
            continue
        doomed.append(job)
        total -= job.size
        for digest in job.inputs:
            refs[digest] -= 1
            if refs[digest] == 0 and digest in inputs:
                total -= inputs[digest][0]
    report.removed_jobs = [j.job_id for j in doomed]
    report.removed_bytes = sum(j.size for j in doomed)
    if dry_run:
        live = {d for d, n in refs.items() if n > 0}
    else:  # listed again, just before removing inputs: a job submitted meanwhile keeps its frames
        live = {d for path in _job_dirs(root) for d in _job_inputs(path)[1]}
    for digest, (size, mtime) in inputs.items():
        if digest in live or now - mtime < GRACE_S:
            continue
        if not dry_run:
            try:
                (root / "inputs" / digest[:2] / f"{digest}.npz").unlink()
            except FileNotFoundError:
                continue
        report.removed_inputs += 1
        report.removed_bytes += size
    kept = [j for j in jobs if j not in doomed]
    report.kept_jobs = len(kept)
    report.kept_bytes = max(0, sum(j.size for j in jobs) + sum(s for s, _ in inputs.values()) - report.removed_bytes)
    return report


def _try_remove(job: _Job, dry_run: bool) -> bool:
    """Remove a job unless it is running; True when it was (or, dry, would be) removed."""
    lock_path = job.path / LOCK_NAME
    try:
        lock = open(lock_path, "a")
    except OSError:
        lock = None
    try:
        if lock is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        if dry_run:
            return True
        trash = job.path.with_name(f".trash-{job.job_id}-{os.getpid()}")
        os.replace(job.path, trash)   # gone from its name at once: readers see the job whole or not at all
    finally:
        if lock is not None:
            lock.close()
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _jobs(root: Path) -> list[_Job]:
    out = []
    for path in _job_dirs(root):
        used, digests = _job_inputs(path)
        out.append(_Job(path.name, path, used, _tree_size(path), digests))
    return out


def _job_dirs(root: Path) -> list[Path]:
    jobs_dir = root / "jobs"
    return [p for p in sorted(jobs_dir.iterdir()) if not p.name.startswith(".") and p.is_dir()]


def _job_inputs(path: Path) -> tuple[float, set[str]]:
    """(last used, digests of every input it reads) of one job folder."""
    spec = path / "job.json"
    try:
        used = spec.stat().st_mtime
        data = json.loads(spec.read_text())
        digests = {d for _, d in data.get("frames", [])}
        digests |= {d for items in data.get("sides", {}).values() for _, d in items}
        return used, digests
    except (OSError, ValueError, TypeError):
        return path.stat().st_mtime, set()   # a damaged or half-made job: its folder's age, no inputs


def _inputs(root: Path) -> dict[str, tuple[int, float]]:
    """digest -> (size, modification time) of every stored input frame."""
    out = {}
    for file in (root / "inputs").glob("*/*.npz"):
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        out[file.stem] = (stat.st_size, stat.st_mtime)
    return out


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total
