"""A Ray actor that computes units of jobs into the shared store, keeping its models warm between tasks."""

from __future__ import annotations

from backend.cluster.connect import import_ray

# Units run one at a time (the default group); `stop` and `where` are called in a group with its own thread
# (control(runner).stop.remote(...)), so a cancel reaches a unit while it computes.
CONTROL = "control"


class UnitRunner:
    """One per GPU (or per CPU worker): its model registry lives as long as the actor, so weights loaded for
    one unit are warm for the next unit that needs them."""

    def __init__(self, store_root: str, models_arg: str | None, device: str):
        from backend.models import load_registry

        self.store_root = store_root
        self.models = load_registry(models_arg)
        self.device = runner_device(device)
        self.stopped: set[str] = set()  # runs of the pool that were cancelled (one token per RunnerPool.run)

    def run_unit(self, job: dict, todo: list[int], run: str = "") -> list[int]:
        """Compute the frames `todo` of one job; each frame lands in the store atomically, so a unit cut short
        (its node died, or the run was cancelled) and run again elsewhere recomputes only what is missing."""
        from backend.errors import Cancelled
        from backend.jobs import JobCallbacks, run_job
        from backend.store import JobSpec, Store

        if run in self.stopped:  # queued behind the unit that was computing when the run was cancelled
            raise Cancelled()
        done: list[int] = []
        run_job(Store(self.store_root), JobSpec.from_json(job), models=self.models, device=self.device,
                only=set(todo), callbacks=JobCallbacks(on_frame=done.append, is_cancelled=lambda: run in self.stopped))
        return done

    def stop(self, run: str) -> None:
        """Cancel the pool's run `run`: the unit computing stops at its next frame or step (raising Cancelled)."""
        self.stopped.add(run)

    def where(self) -> dict:
        import os
        import socket

        ray = import_ray()
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                "gpus": ray.get_gpu_ids()}


def start_runner(store_root: str, models_arg: str | None, *, gpu: bool):
    """A new UnitRunner actor holding one GPU (or one CPU). Not restarted by Ray: the pool gives a dead
    runner's unit to a living one (a restarted actor would wait for a GPU that left with its node)."""
    ray = import_ray()
    actor = ray.remote(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_restarts=0,
                       concurrency_groups={CONTROL: 1})(UnitRunner)
    return actor.remote(store_root, models_arg, "cuda" if gpu else "cpu")


def control(runner, method: str):
    """`runner.method` sent to the control thread, past any unit the runner is computing."""
    return getattr(runner, method).options(concurrency_group=CONTROL)


def runner_device(device: str) -> str:
    """A GPU runner computes on CUDA when this node has it; a logical GPU (tests, CPU nodes) computes on CPU."""
    if device != "cuda":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
