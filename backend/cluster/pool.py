"""Running one job on the cluster: split it into units, hand them to runners, announce frames as units end.

Every unit writes its frames into the shared store itself (atomic files), so nothing travels back through Ray
but the frame numbers; a unit whose frames are all stored is never sent. A runner that dies (its node went
away) takes no frame with it: its unit goes to a living runner, which computes only what is still missing.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from backend.cluster.connect import import_ray
from backend.cluster.routing import pick_runner
from backend.cluster.worker import control, start_runner
from backend.errors import Cancelled, StageError
from backend.jobs import JobCallbacks, check_still_current, prepare
from backend.stages.base import job_units
from backend.store import JobSpec, Store

IN_FLIGHT = 2  # units handed to one runner at a time
JOIN_WAIT_S = 60.0  # how long a new runner may take to start (imports, models) before the pool goes on without it
STOP_WAIT_S = 60.0  # how long a cancel waits for the runners to reach their next frame or step
POLL_S = 0.1        # how often the job loop looks for a cancel while units compute


class RunnerPool:
    def __init__(self, store_root: str, *, models_arg: str | None = None, workers: int | None = None,
                 chunk: int = 8, models: Any = None):
        """One runner per GPU the cluster has; with no GPU, `workers` CPU runners (default: 1)."""
        ray = import_ray()
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.gpu = gpus > 0
        self.wanted = workers or (gpus if self.gpu else 1)   # CPU runners to keep (with GPUs: every free GPU)
        self.start = lambda: start_runner(store_root, models_arg, gpu=self.gpu)
        self.runners: list = []
        self.places: list[dict] = []         # where each runner is (asked once it started)
        self.holds: dict[int, str] = {}      # runner index -> models key of its last unit
        self.chunk = chunk
        self.models = models                 # the front's registry: only for the job's identity checks
        self.alive: set[int] = set()         # runners whose node still answers
        self.units_run = 0
        self.grow(self.wanted)
        if not self.alive:
            raise StageError("no cluster worker started: the cluster has no free GPU or CPU for one "
                             f"(resources: {ray.cluster_resources()}); add a worker node "
                             "(ray start --address HEAD) and serve again", code="cluster_lost")

    def grow(self, count: int | None = None) -> int:
        """Start runners for what the cluster has free: `count`, or with GPUs one per free GPU (a node that
        joined or came back since the pool began), without GPUs enough to keep `wanted` alive. Returns how
        many started; one that cannot start in JOIN_WAIT_S (no room after all) is ended."""
        ray = import_ray()
        if count is None:
            count = int(ray.available_resources().get("GPU", 0)) if self.gpu else self.wanted - len(self.alive)
        if count <= 0:
            return 0
        new = [self.start() for _ in range(count)]
        asked = {control(runner, "where").remote(): runner for runner in new}
        ready, late = ray.wait(list(asked), num_returns=len(asked), timeout=JOIN_WAIT_S)
        started = 0
        for ref in ready:
            try:
                place = ray.get(ref)
            except ray.exceptions.RayError:
                continue
            self.runners.append(asked[ref])
            self.places.append(place)
            self.alive.add(len(self.runners) - 1)
            started += 1
        for ref in late:
            ray.kill(asked[ref])
        return started

    def describe(self) -> list[dict]:
        """Where each living runner is: node id, host, pid, GPU ids."""
        return [self.places[i] for i in sorted(self.alive)]

    def close(self) -> None:
        """End the runners now, giving their GPUs back to the cluster (else they end with this process)."""
        ray = import_ray()
        for runner in self.runners:
            ray.kill(runner)
        self.alive.clear()

    def summary(self) -> dict:
        """What `dstage ping` shows: the living workers (on nodes the cluster still counts alive), the nodes
        they are on, the GPUs they hold."""
        ray = import_ray()
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        workers = [w for w in self.describe() if w["node"] in nodes]
        return {"workers": len(workers), "nodes": len({w["node"] for w in workers}),
                "gpus": sum(len(w["gpus"]) for w in workers), "hosts": sorted({w["host"] for w in workers})}

    def run(self, store: Store, spec: JobSpec, callbacks: JobCallbacks | None = None) -> None:
        ray = import_ray()
        cb = callbacks or JobCallbacks()
        stage, params, layers = prepare(spec)
        take = store.open_take(spec, layers)
        frames = [f for f, _ in spec.frames]
        todo = [f for f in frames if not take.is_complete(f)]
        if not todo:
            return
        check_still_current(spec, stage, params, self.models)
        self.grow()  # GPUs that joined since the last job
        run = uuid.uuid4().hex  # what a cancel tells the runners to stop
        queue = list(job_units(stage, params, frames, todo, chunk=self.chunk))
        models_key = json.dumps(spec.models, sort_keys=True)
        job = spec.to_json()
        running: dict[Any, tuple[int, Any]] = {}   # task ref -> (runner index, unit)
        alive = self.alive
        finished = len(frames) - len(todo)
        announced: set[int] = set()
        while queue or running:
            if cb.is_cancelled():
                self._stop(run, running)
                raise Cancelled()
            # IN_FLIGHT units per runner: the next one waits in the actor's queue, so it starts the moment the
            # last ends instead of after a round trip through this loop
            busy = Counter(index for index, _ in running.values())
            free = [i for i in sorted(alive) if busy[i] < IN_FLIGHT]
            while queue and free:
                index = pick_runner(free, self.holds, models_key)
                busy[index] += 1
                if busy[index] == IN_FLIGHT:
                    free.remove(index)
                unit = queue.pop(0)
                running[self.runners[index].run_unit.remote(job, list(unit.todo), run)] = (index, unit)
                self.holds[index] = models_key
            if not running and self.grow():
                continue  # every runner died, but workers have joined meanwhile
            if not running:
                raise StageError("every cluster worker died before the job finished; start workers "
                                 "(ray start --address HEAD) and run the job again: stored frames are kept",
                                 code="cluster_lost")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                index, unit = running.pop(ref)
                try:
                    done = ray.get(ref)
                except ray.exceptions.RayActorError:
                    alive.discard(index)    # its node died: the unit's missing frames go to another runner
                    queue.insert(0, unit)
                    continue
                except ray.exceptions.RayTaskError as e:
                    self._stop(run, running)  # the job has failed: its other units stop computing too
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, (StageError, Cancelled)):
                        raise cause from None
                    raise
                self.units_run += 1
                # a dead runner's unit may have stored some frames before it died: announce those too, once
                new = [f for f in unit.todo if f not in announced and (f in done or take.is_complete(f))]
                for frame in new:
                    cb.on_frame(frame)
                announced.update(new)
                finished += len(new)
                cb.on_progress(unit.frames[-1], finished, len(frames),
                               f"frames {unit.frames[0]}-{unit.frames[-1]} done on worker {index}")

    def _stop(self, run: str, running: dict) -> None:
        """Tell the runners computing `run` to stop and wait until they have, so that once the client hears
        "cancelled" no unit of the job is still computing (or holding a GPU the next job needs)."""
        ray = import_ray()
        for index in {index for index, _ in running.values()}:
            control(self.runners[index], "stop").remote(run)
        ray.wait(list(running), num_returns=len(running), timeout=STOP_WAIT_S)
