"""The job store: content-addressed input frames, job specs and each job's take.

    STORE/inputs/ab/abcdef….npz    one source frame's arrays, keyed by their digest
    STORE/jobs/<job_id>/job.json   what the job is: stage, parameters, frames and their input digests
    STORE/jobs/<job_id>/take/      the job's take, frame by frame (see backend/ipc/take.py)
    STORE/jobs/<job_id>/scratch/   the stage's intermediate results (keyframes, fitted scales)

Every file is written atomically, so `kill -9` at any moment leaves only whole files: a frame either
has all its layer files or is computed again, deterministically, on the next run.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from backend import __version__
from backend.ipc.digest import digest_arrays, digest_json
from backend.ipc.take import Take, TakeInfo, atomic_write_bytes


class StoreError(ValueError):
    """A store request that cannot be honoured (unknown job, input that does not match its digest)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class JobSpec:
    """Everything that identifies a job. Its id is a hash of all of it."""

    stage: str
    params: dict
    frames: list[tuple[int, str]]          # (frame number, input digest), in order
    size: tuple[int, int]                  # source (width, height)
    fps: float = 24.0
    source: dict = field(default_factory=dict)  # where the frames came from, for take.json only

    @property
    def job_id(self) -> str:
        ident = {"stage": self.stage, "params": self.params, "frames": [list(f) for f in self.frames],
                 "size": list(self.size)}
        return f"{self.stage}-{digest_json(ident)}"

    @property
    def digests(self) -> dict[int, str]:
        return {frame: digest for frame, digest in self.frames}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "JobSpec":
        return cls(
            stage=data["stage"], params=data["params"], frames=[(int(f), str(d)) for f, d in data["frames"]],
            size=tuple(data["size"]), fps=float(data.get("fps", 24.0)), source=data.get("source", {}),
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

    def put_input(self, digest: str, arrays: dict[str, np.ndarray]) -> None:
        actual = digest_arrays(arrays)
        if actual != digest:
            raise StoreError(
                "digest_mismatch",
                f"frame arrays hash to {actual} but were sent as {digest}; the frame was altered in transit "
                "or the sender computed its digest on other data",
            )
        path = self._input_path(digest)
        if path.is_file():
            return
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getbuffer())

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
        job_id = spec.job_id
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            atomic_write_bytes(path, json.dumps(spec.to_json(), indent=1).encode())
        return job_id

    def load_job(self, job_id: str) -> JobSpec:
        path = self.job_dir(job_id) / "job.json"
        if not path.is_file():
            raise StoreError("unknown_job", f"no job {job_id} in the store at {self.root}; submit it again")
        return JobSpec.from_json(json.loads(path.read_text()))

    def missing_inputs(self, spec: JobSpec) -> list[int]:
        return [frame for frame, digest in spec.frames if not self.has_input(digest)]

    def take_info(self, spec: JobSpec, layers: dict) -> TakeInfo:
        frames = [f for f, _ in spec.frames]
        return TakeInfo(
            frame_start=min(frames), frame_end=max(frames), width=spec.size[0], height=spec.size[1],
            fps=spec.fps, layers=layers, stage=spec.stage, job_id=spec.job_id, source=spec.source,
            params=spec.params, versions={"diffusion_stage": __version__},
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
