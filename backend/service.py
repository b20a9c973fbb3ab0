"""The server's job service: what submit, input, fetch and run mean, on top of the store.

Kept apart from backend/ipc/server.py so that the socket code never imports torch, and so that tests can
drive the same service without a socket.
"""

from __future__ import annotations

import os
import platform
from collections import OrderedDict
from typing import Any

from backend import __version__
from backend.ipc.server import RequestError
from backend.jobs import JobCallbacks, check_frame_size, identify, prepare, run_job
from backend.params import ParamError, describe
from backend.stages.base import Cancelled, StageError, all_stages
from backend.failures import failure_message
from backend.image_header import DEFAULT_MAX_MEGAPIXELS

# Specs kept in memory (the store holds them all; an evicted one is read back when asked for)
SPEC_CACHE = 1024
# A frame in flight costs about this much per pixel at its peak (float32 RGBA copies: input, warped layers,
# weights, output): the default pixel budget keeps one frame within a sixteenth of this machine's memory.
PEAK_BYTES_PER_PIXEL = 16 * 16


def default_max_megapixels() -> float:
    """The CLI's pixel budget, lowered on a machine whose memory could not hold a frame that big."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform: the CLI's budget alone
        return DEFAULT_MAX_MEGAPIXELS
    return max(1.0, min(DEFAULT_MAX_MEGAPIXELS, memory / PEAK_BYTES_PER_PIXEL / 1e6))
from backend.store import JobSpec, Store, StoreError


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)}"
    except Exception:  # torch missing or broken: the weight-free stages still work
        pass
    return f"cpu: {platform.processor() or platform.machine()}"


def spec_from_fields(fields: dict, max_megapixels: float | None = None) -> JobSpec:
    """A JobSpec from a submit request, with a clear error for each malformed field."""
    stage, params, frames, size = (fields.get(k) for k in ("stage", "params", "frames", "size"))
    if not isinstance(stage, str):
        raise RequestError("bad_request", "submit needs 'stage' (text); ask 'stages' for the list")
    if not isinstance(params, dict):
        raise RequestError("bad_request", "submit needs 'params' (an object, possibly empty)")
    if (not isinstance(frames, list) or not frames or not all(
            isinstance(f, list) and len(f) == 2 and isinstance(f[0], int) and isinstance(f[1], str) for f in frames)):
        raise RequestError("bad_request", "submit needs 'frames': a non-empty list of [frame number, input digest]")
    if len({f for f, _ in frames}) != len(frames):
        raise RequestError("bad_request", "submit 'frames' lists a frame number twice")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and 0 < n <= 16384 for n in size)):
        raise RequestError("bad_request", "submit needs 'size': [width, height] in pixels, each 1..16384")
    if max_megapixels is not None and size[0] * size[1] > max_megapixels * 1e6:
        raise RequestError("too_large", f"frames of {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP) are above "
                                        f"this backend's pixel budget of {max_megapixels:g} MP; scale them down, or "
                                        "start the backend with a larger `dstage serve --max-megapixels`")
    fps = fields.get("fps", 24.0)
    if not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        raise RequestError("bad_request", f"fps must be a number in (0, 1000], got {fps!r}")
    source = fields.get("source", {})
    return JobSpec(stage, params, [(int(f), d) for f, d in frames], (size[0], size[1]), float(fps),
                   source if isinstance(source, dict) else {}, sides=sides_from_fields(fields.get("sides", {})))


def sides_from_fields(sides) -> dict[str, list[tuple[int, str]]]:
    """The side inputs of a submit: {name: [[key, digest], ...]} (uploaded like frames, never server paths)."""
    def valid(items) -> bool:
        return isinstance(items, list) and bool(items) and all(
            isinstance(i, list) and len(i) == 2 and isinstance(i[0], int) and isinstance(i[1], str) for i in items)

    if not isinstance(sides, dict) or not all(isinstance(n, str) and n.isidentifier() and valid(items)
                                              for n, items in sides.items()):
        raise RequestError("bad_request", "submit 'sides' must map side input names to non-empty lists of "
                                          "[key, input digest]; side inputs are uploaded, never given as paths")
    return {name: [(int(k), d) for k, d in items] for name, items in sides.items()}


class StoreService:
    def __init__(self, store: Store, *, models: Any = None, device: str | None = None,
                 store_max_bytes: int | None = None, max_megapixels: float | None = None, pool: Any = None):
        self.store = store
        self.pool = pool  # a cluster.RunnerPool: jobs run as units on Ray workers instead of in this process
        self.max_megapixels = default_max_megapixels() if max_megapixels is None else max_megapixels
        self.store_max_bytes = store_max_bytes  # after each job, least recently used jobs go until the store fits
        self.models = models
        self.device_label = device_name() if device is None else device
        self.device = device or ("cuda" if self.device_label.startswith("cuda") else "cpu")
        self._specs: OrderedDict[str, JobSpec] = OrderedDict()  # the most recently used last

    def describe(self) -> dict:
        info = {"version": __version__, "device": self.device_label, "stages": sorted(all_stages())}
        if self.pool is not None:
            info["cluster"] = self.pool.summary()
        return info

    def stages(self) -> list[dict]:
        return [{"name": name, "summary": s.summary, "params": describe(s.Params)} for name, s in all_stages().items()]

    def spec(self, job_id: str) -> JobSpec:
        if job_id not in self._specs:
            try:
                self._remember(job_id, self.store.load_job(job_id))
            except StoreError as e:
                raise RequestError(e.code, str(e), job_id=job_id) from None
        self._specs.move_to_end(job_id)
        return self._specs[job_id]

    def _remember(self, job_id: str, spec: JobSpec) -> None:
        self._specs[job_id] = spec
        self._specs.move_to_end(job_id)
        while len(self._specs) > SPEC_CACHE:
            self._specs.popitem(last=False)

    def submit(self, fields: dict) -> dict:
        spec = spec_from_fields(fields, self.max_megapixels)
        try:
            _, _, layers = identify(spec, self.models)  # canonical params, stage version, model identities
        except ParamError as e:
            raise RequestError("bad_param", f"stage {spec.stage}: {e}", field=e.field) from None
        except StageError as e:
            raise RequestError(e.code, str(e)) from None
        job_id = self.store.save_job(spec)
        self._remember(job_id, spec)
        take = self.store.open_take(spec, layers)
        return {"job_id": job_id, "take": take.info.to_json(), "done": self.store.done_frames(spec),
                "need": self.store.missing_inputs(spec), "need_sides": self.store.missing_sides(spec)}

    def put_input(self, job_id: str, frame: int, digest: str, arrays: dict) -> None:
        """One input of a job: a frame (`frame` its number) or an item of a side input (`frame` its key)."""
        spec = self.spec(job_id)
        if digest not in spec.all_digests():
            raise RequestError("bad_input", f"input {frame} with digest {digest} is not part of job {job_id}",
                               job_id=job_id, frame=frame)
        try:
            if spec.digests.get(frame) == digest:
                check_frame_size(arrays, spec.size, frame)
            self.store.put_input(digest, arrays)
        except StageError as e:
            raise RequestError(e.code, str(e), job_id=job_id, frame=frame) from None
        except StoreError as e:
            raise RequestError(e.code, str(e), job_id=job_id, frame=frame) from None

    def missing_inputs(self, job_id: str) -> list:
        """What the job still lacks: frame numbers, then (side input, key) pairs; empty once it can run."""
        spec = self.spec(job_id)
        sides = self.store.missing_sides(spec)
        return self.store.missing_inputs(spec) + [(name, key) for name, keys in sides.items() for key in keys]

    def done_frames(self, job_id: str) -> list[int]:
        return self.store.done_frames(self.spec(job_id))

    def is_complete(self, job_id: str) -> bool:
        return len(self.done_frames(job_id)) == len(self.spec(job_id).frames)

    def read_result(self, job_id: str, frame: int) -> dict[str, bytes]:
        spec = self.spec(job_id)
        _, _, layers = prepare(spec)
        take = self.store.open_take(spec, layers)
        if frame not in spec.digests or not take.is_complete(frame):
            raise RequestError("not_ready", f"frame {frame} of job {job_id} is not computed yet",
                               job_id=job_id, frame=frame)
        return {name: take.path(name, frame).read_bytes() for name in take.info.layers}

    def run(self, job_id: str, on_frame, on_progress, is_cancelled) -> None:
        try:
            with self.store.running(job_id):
                callbacks = JobCallbacks(on_frame, on_progress, is_cancelled)
                if self.pool is not None:
                    self.pool.run(self.store, self.spec(job_id), callbacks)
                else:
                    run_job(self.store, self.spec(job_id), callbacks, models=self.models, device=self.device)
            if self.store_max_bytes is not None:
                self.store.collect(max_bytes=self.store_max_bytes, keep=(job_id,))
        except (Cancelled, StageError):
            raise
        except ParamError as e:
            raise StageError(str(e), code="bad_param") from None
        except Exception as e:  # a library's own error (cv2.error carries an int code): a message, a text code
            raise StageError(failure_message(e), code="stage_failed") from e
