"""The job store: content-addressed input frames, job specs and each job's take.

    STORE/inputs/ab/abcdef….npz    one source frame's arrays, keyed by their digest
    STORE/jobs/<job_id>/job.json   what the job is: stage, parameters, frames and their input digests
    STORE/jobs/<job_id>/take/      the job's take, frame by frame (see backend/ipc/take.py)
    STORE/jobs/<job_id>/scratch/   the stage's intermediate results (keyframes, fitted scales)

Side inputs (keyframes, clean plates) are stored like frames, by digest. `dstage store gc` and the
store size limit remove unused jobs and unread inputs (backend/store_gc.py).

Every file is written atomically, so `kill -9` at any moment leaves only whole files: a frame either
has all its layer files or is computed again, deterministically, on the next run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from backend import __version__, store_gc
from backend.ipc.digest import digest_arrays, digest_json
from backend.ipc.take import Take, TakeInfo, atomic_write, atomic_write_bytes


class StoreError(ValueError):
    """A store request that cannot be honoured (unknown job, input that does not match its digest)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class JobSpec:
    """Everything that identifies a job. Its id is a hash of all of it but fps and source (see backend/identity.py)."""

    stage: str
    params: dict
    frames: list[tuple[int, str]]          # (frame number, input digest), in order
    size: tuple[int, int]                  # source (width, height)
    fps: float = 24.0
    source: dict = field(default_factory=dict)  # where the frames came from, for take.json only
    sides: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # side input -> (key, digest) each
    version: int = 0                       # the stage's version (filled in by jobs.identify)
    models: dict = field(default_factory=dict)  # role -> identity of its weights (filled in by jobs.identify)

    @property
    def job_id(self) -> str:
        ident = {"stage": self.stage, "version": self.version, "params": self.params,
                 "frames": [list(f) for f in self.frames], "size": list(self.size),
                 "sides": {name: [list(s) for s in items] for name, items in self.sides.items()},
                 "models": self.models}
        return f"{self.stage}-{digest_json(ident)}"

    @property
    def digests(self) -> dict[int, str]:
        return {frame: digest for frame, digest in self.frames}

    def side_digests(self, name: str) -> dict[int, str]:
        return {key: digest for key, digest in self.sides.get(name, [])}

    def all_digests(self) -> set[str]:
        """Every input this job reads: its frames and its side inputs."""
        return {d for _, d in self.frames} | {d for items in self.sides.values() for _, d in items}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "JobSpec":
        return cls(
            stage=data["stage"], params=data["params"], frames=[(int(f), str(d)) for f, d in data["frames"]],
            size=tuple(data["size"]), fps=float(data.get("fps", 24.0)), source=data.get("source", {}),
            sides={name: [(int(k), str(d)) for k, d in items] for name, items in data.get("sides", {}).items()},
            version=int(data.get("version", 0)), models=data.get("models", {}),
        )


class Store:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        (self.root / "inputs").mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)

    # -- inputs ------------------------------------------------------------------------------
    def _input_path(self, digest: str) -> Path:
        if len(digest) < 8 or not all(c in "0123456789abcdef" for c in digest):
            raise StoreError("bad_digest", f"{digest!r:.60} is not a frame digest (lowercase hex)")
        return self.root / "inputs" / digest[:2] / f"{digest}.npz"

    def has_input(self, digest: str) -> bool:
        return self._input_path(digest).is_file()

    def put_input(self, digest: str, arrays: dict[str, np.ndarray], *, digested: bool = False) -> None:
        """Store a frame's arrays under their digest, checked unless `digested` (the caller has just hashed these
        very arrays itself, as `dstage run` does reading its files: a second hash would cost a millisecond a frame)."""
        actual = digest if digested else digest_arrays(arrays)
        if actual != digest:
            raise StoreError(
                "digest_mismatch",
                f"frame arrays hash to {actual} but were sent as {digest}; the frame was altered in transit "
                "or the sender computed its digest on other data",
            )
        path = self._input_path(digest)
        if path.is_file():
            return
        atomic_write(path, lambda f: np.savez(f, **arrays))  # straight to the file: 2.5 ms a 960x540 frame, not 4.6

    def get_input(self, digest: str) -> dict[str, np.ndarray]:
        path = self._input_path(digest)
        if not path.is_file():
            raise StoreError("input_missing", f"input frame {digest} is not in the store; send it again")
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    # -- jobs --------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise StoreError("bad_job_id", f"{job_id!r:.60} is not a job id")
        return self.root / "jobs" / job_id

    def save_job(self, spec: JobSpec) -> str:
        """Record the job (once), and mark it and the inputs it already finds as just used (see store_gc)."""
        job_id = spec.job_id
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            atomic_write_bytes(path, json.dumps(spec.to_json(), indent=1).encode())
        else:
            os.utime(path)
        for digest in spec.all_digests():
            try:
                os.utime(self._input_path(digest))
            except FileNotFoundError:
                pass
        return job_id

    def running(self, job_id: str):
        """Context manager held while the job computes: `collect` never removes it meanwhile."""
        return store_gc.running(self.job_dir(job_id))

    def collect(self, *, keep_days: float | None = None, max_bytes: int | None = None, dry_run: bool = False,
                keep: tuple[str, ...] = ()) -> store_gc.GcReport:
        """Remove unused jobs and unread inputs (backend/store_gc.py); never a running job or one in `keep`."""
        return store_gc.collect(self.root, keep_days=keep_days, max_bytes=max_bytes, dry_run=dry_run, keep=keep)

    def load_job(self, job_id: str) -> JobSpec:
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            raise StoreError("unknown_job", f"no job {job_id} in the store at {self.root}; submit it again")
        return JobSpec.from_json(json.loads(path.read_text()))

    def missing_inputs(self, spec: JobSpec) -> list[int]:
        return [frame for frame, digest in spec.frames if not self.has_input(digest)]

    def missing_sides(self, spec: JobSpec) -> dict[str, list[int]]:
        """The keys of each side input the store lacks (only side inputs with something missing)."""
        out = {name: [key for key, digest in items if not self.has_input(digest)] for name, items in spec.sides.items()}
        return {name: keys for name, keys in out.items() if keys}

    def take_info(self, spec: JobSpec, layers: dict) -> TakeInfo:
        frames = [f for f, _ in spec.frames]
        return TakeInfo(
            frame_start=min(frames), frame_end=max(frames), width=spec.size[0], height=spec.size[1],
            fps=spec.fps, layers=layers, stage=spec.stage, job_id=spec.job_id,
            source={**spec.source, **({"sides": spec.sides} if spec.sides else {})}, params=spec.params,
            versions={"diffusion_stage": __version__, "stage": spec.version, "models": spec.models},
        )

    def open_take(self, spec: JobSpec, layers: dict) -> Take:
        root = self.job_dir(spec.job_id) / "take"
        if (root / "take.json").is_file():
            return Take.open(root)
        return Take.create(root, self.take_info(spec, layers))

    def done_frames(self, spec: JobSpec) -> list[int]:
        root = self.job_dir(spec.job_id) / "take"
        if not (root / "take.json").is_file():
            return []
        take = Take.open(root)
        return [f for f, _ in spec.frames if take.is_complete(f)]

    def scratch_dir(self, job_id: str) -> Path:
        path = self.job_dir(job_id) / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path
