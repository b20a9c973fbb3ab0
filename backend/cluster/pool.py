"""Running one job on the cluster: split it into units, hand them to runners, announce frames as units end.

Every unit writes its frames into the shared store itself (atomic files), so nothing travels back through Ray
but the frame numbers; a unit whose frames are all stored is never sent. A runner that dies (its node went
away) takes no frame with it: its unit goes to a living runner, which computes only what is still missing.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from backend.cluster.connect import import_ray
from backend.cluster.routing import pick_runner
from backend.cluster.worker import start_runner
from backend.errors import Cancelled, StageError
from backend.jobs import JobCallbacks, check_still_current, prepare
from backend.stages.base import job_units
from backend.store import JobSpec, Store

IN_FLIGHT = 2  # units handed to one runner at a time


class RunnerPool:
    def __init__(self, store_root: str, *, models_arg: str | None = None, workers: int | None = None,
                 chunk: int = 8, models: Any = None):
        """One runner per GPU the cluster has; with no GPU, `workers` CPU runners (default: 1)."""
        ray = import_ray()
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.gpu = gpus > 0
        count = workers or (gpus if self.gpu else 1)
        self.runners = [start_runner(store_root, models_arg, gpu=self.gpu) for _ in range(count)]
        self.holds: dict[int, str] = {}      # runner index -> models key of its last unit
        self.chunk = chunk
        self.models = models                 # the front's registry: only for the job's identity checks
        self.alive = set(range(count))       # runners whose node still answers
        self.units_run = 0
        # asked once: an actor answers one call at a time, so asking while it computes would wait for its unit
        self.places = ray.get([runner.where.remote() for runner in self.runners])

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
        """What `dstage ping` shows: the living workers, the nodes they are on, the GPUs they hold."""
        workers = self.describe()
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
        queue = list(job_units(stage, params, frames, todo, chunk=self.chunk))
        models_key = json.dumps(spec.models, sort_keys=True)
        job = spec.to_json()
        running: dict[Any, tuple[int, Any]] = {}   # task ref -> (runner index, unit)
        alive = self.alive
        finished = len(frames) - len(todo)
        announced: set[int] = set()
        while queue or running:
            if cb.is_cancelled():
                for ref in running:
                    ray.cancel(ref)
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
                running[self.runners[index].run_unit.remote(job, list(unit.todo))] = (index, unit)
                self.holds[index] = models_key
            if not running:
                raise StageError("every cluster worker died before the job finished; start workers "
                                 "(ray start --address HEAD) and run the job again: stored frames are kept",
                                 code="cluster_lost")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                index, unit = running.pop(ref)
                try:
                    done = ray.get(ref)
                except ray.exceptions.RayActorError:
                    alive.discard(index)    # its node died: the unit's missing frames go to another runner
                    queue.insert(0, unit)
                    continue
                except ray.exceptions.RayTaskError as e:
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
