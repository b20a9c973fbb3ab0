"""Driving one job on a backend, a little at a time: submit, upload what the server lacks, fetch what
it finished into a local take folder, and resume after a reconnect.

`step()` does a bounded amount of work and returns; Blender calls it from a timer, the command line in a
loop. Frames already in the local take are never fetched again, and the server never recomputes frames
it stored, so an interrupted job (either side killed) finishes with the same files as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

from backend.ipc.client import Client
from backend.ipc.take import Take, TakeError, TakeInfo

ACTIVE = ("submitting", "uploading", "running")
STALL_S = 10.0  # no word about this job for this long: ask again (submitting is idempotent)


def _list(value) -> list:
    return value if isinstance(value, list) else []


# a server that keeps forgetting the job after accepting it again is broken: fail rather than loop
MAX_FORGOTTEN = 50


class RemoteJob:
    def __init__(self, client: Client, *, stage: str, params: dict, digests: dict[int, str],
                 read_input: Callable[[int], dict[str, np.ndarray]], size: tuple[int, int], out_dir: str | Path,
                 fps: float = 24.0, source: dict | None = None, window: int = 4,
                 sides: dict[str, tuple[dict[int, str], Callable[[int], dict[str, np.ndarray]]]] | None = None):
        """`sides`: side inputs (keyframes ...) by name, each ({key: digest}, read(key) -> arrays); they are
        uploaded like frames, before them."""
        self.client = client
        self.request = {"stage": stage, "params": params, "frames": [[f, d] for f, d in sorted(digests.items())],
                        "size": list(size), "fps": fps, "source": source or {}}
        self.sides = sides or {}
        if self.sides:
            self.request["sides"] = {name: [[k, d] for k, d in sorted(keyed.items())]
                                     for name, (keyed, _) in self.sides.items()}
        self.frames = sorted(digests)
        self.digests = digests
        self.read_input = read_input
        self.out_dir = Path(out_dir)
        self.window = window
        self.state = "submitting"
        self.job_id: str | None = None
        self.take: Take | None = None
        self.error: tuple[str, str] | None = None
        self.progress: dict = {}
        self.local_done: set[int] = set()
        self.kept: int | None = None  # frames already in the local take when the job first got one
        self._forgotten = 0  # 'unknown_job' answers so far, each answered by submitting again
        self._submit()

    # -- public ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def fraction(self) -> float:
        return len(self.local_done) / len(self.frames)

    def step(self, budget_s: float = 0.01) -> str:
        deadline = time.monotonic() + budget_s
        while self.active:
            # wait on the socket for what is left of the budget rather than spin: on a small machine a
            # spinning client takes the core the backend needs
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            for msg in self.client.poll(left_ms):
                self._on_message(msg)
            self._pump()
            if self.active and time.monotonic() - self._last_word > STALL_S:
                self._submit()  # a lost message must not hang the job
            if time.monotonic() >= deadline:
                break
        return self.state

    def cancel(self) -> None:
        if self.job_id is not None and self.active:
            self.client.send("cancel", {"job_id": self.job_id})
        self.state = "cancelled"

    # -- internals ---------------------------------------------------------------------------
    def _submit(self) -> None:
        self.uploads: deque[tuple[str | None, int]] = deque()   # (side input or None for a frame, key)
        self.fetches: deque[int] = deque()
        self.in_flight_up: dict[int, tuple[str | None, int]] = {}  # request id -> upload
        self.in_flight_down: set[int] = set()
        self._reqs: set[int] = set()
        self._last_word = time.monotonic()
        self.submit_req = self._send("submit", self.request)
        self.state = "submitting"

    def _send(self, type: str, fields: dict, arrays: dict | None = None) -> int:
        req = self.client.send(type, fields, arrays)
        self._reqs.add(req)
        return req

    def _pump(self) -> None:
        while self.uploads and len(self.in_flight_up) < self.window:
            side, key = item = self.uploads.popleft()
            if side is None:
                digest, arrays = self.digests[key], self.read_input(key)
            else:
                keyed, read = self.sides[side]
                digest, arrays = keyed[key], read(key)
            req = self._send("input", {"job_id": self.job_id, "frame": key, "digest": digest}, arrays)
            self.in_flight_up[req] = item
        while self.fetches and len(self.in_flight_down) < self.window:
            frame = self.fetches.popleft()
            if frame in self.local_done or frame in self.in_flight_down:
                continue
            self._send("fetch", {"job_id": self.job_id, "frame": frame})
            self.in_flight_down.add(frame)
        if self.state == "uploading" and not self.uploads and not self.in_flight_up:
            self.state = "running"
        if self.take is not None and len(self.local_done) == len(self.frames):
            self.state = "done"

    def _want(self, frames) -> None:
        for frame in frames:
            if frame not in self.local_done and frame not in self.in_flight_down:
                self.fetches.append(frame)

    def _on_message(self, msg) -> None:
        kind = msg.type
        if msg.get("job_id") == self.job_id or msg.get("req") in self._reqs:
            self._last_word = time.monotonic()
        if kind == "reconnected":
            self._submit()  # the server may have restarted: start over; stored frames are not recomputed
            return
        if msg.get("job_id") not in (None, self.job_id) and kind != "accepted":
            return
        if kind == "accepted" and msg.get("req") == self.submit_req:
            self._accepted(msg)
        elif kind == "stored":
            self.in_flight_up.pop(msg.get("req"), None)
        elif kind == "frame":
            self._want([msg.get("frame")])
        elif kind == "result":
            self._result(msg)
        elif kind == "progress":
            self.progress = msg.header
        elif kind == "done":
            self._want(msg.get("frames") or self.frames)
        elif kind == "cancelled":
            self.state = "cancelled"
        elif kind == "error":
            self._error(msg)

    def _accepted(self, msg) -> None:
        self.job_id = msg.get("job_id")
        info = TakeInfo.from_json(msg.get("take"))
        self.take = Take.create(self.out_dir, info)
        self.local_done = {f for f in self.frames if self.take.is_complete(f)}
        if self.kept is None:  # a resubmission after a reconnect finds frames this job fetched itself
            self.kept = len(self.local_done)
        need_sides = msg.get("need_sides") or {}
        if not isinstance(need_sides, dict) or not isinstance(msg.get("need") or [], list):
            raise TakeError("the backend's 'accepted' reply is malformed (need, need_sides); it is broken or hostile")
        # only what this job has: a server cannot make the client read (or upload) anything else
        self.uploads = deque([(name, key) for name in self.sides for key in _list(need_sides.get(name))
                              if type(key) is int and key in self.sides[name][0]]
                             + [(None, frame) for frame in msg.get("need") or []
                                if type(frame) is int and frame in self.digests])
        self.state = "uploading"
        self._want(msg.get("done") or [])

    def _result(self, msg) -> None:
        frame = msg.get("frame")
        if type(frame) is not int or frame not in self.take.info.frames:
            raise TakeError(f"the backend sent frame {str(frame)[:40]!r}, which this job did not ask for")
        for layer in msg.arrays:  # every name checked before any file is written
            self.take.path(layer, frame)
        for layer, data in msg.arrays.items():
            self.take.write_file(layer, frame, data)
        self.in_flight_down.discard(frame)
        if self.take.is_complete(frame):
            self.local_done.add(frame)

    def _error(self, msg) -> None:
        mine = msg.get("req") in self._reqs or msg.get("job_id") == self.job_id
        if not mine and msg.get("code") != "bad_message_from_server":
            return  # another request's trouble, not this job's
        code = msg.get("code", "error")
        if code == "not_ready":
            self.in_flight_down.discard(msg.get("frame"))
            return
        if code == "unknown_job" and self._forgotten < MAX_FORGOTTEN:
            # the server does not know the job as ours: it restarted, or our connection is a new one to it
            # (jobs belong to the connection that submitted them); submitting again resumes it
            self._forgotten += 1
            if self.state != "submitting":
                self._submit()
            return
        self.error = (code, msg.get("message", ""))
        self.state = "failed"
