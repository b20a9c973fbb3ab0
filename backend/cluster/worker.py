"""A Ray actor that computes units of jobs into the shared store, keeping its models warm between tasks."""

from __future__ import annotations

from backend.cluster.connect import import_ray


class UnitRunner:
    """One per GPU (or per CPU worker): its model registry lives as long as the actor, so weights loaded for
    one unit are warm for the next unit that needs them."""

    def __init__(self, store_root: str, models_arg: str | None, device: str):
        from backend.models import load_registry

        self.store_root = store_root
        self.models = load_registry(models_arg)
        self.device = runner_device(device)

    def run_unit(self, job: dict, todo: list[int]) -> list[int]:
        """Compute the frames `todo` of one job; each frame lands in the store atomically, so a unit cut short
        (its node died) and run again elsewhere recomputes only what is missing."""
        from backend.jobs import run_job
        from backend.store import JobSpec, Store

        done: list[int] = []
        run_job(Store(self.store_root), JobSpec.from_json(job), models=self.models, device=self.device,
                only=set(todo), callbacks=_collect(done))
        return done

    def where(self) -> dict:
        import os
        import socket

        ray = import_ray()
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                "gpus": ray.get_gpu_ids()}


def _collect(done: list[int]):
    from backend.jobs import JobCallbacks

    return JobCallbacks(on_frame=done.append)


def start_runner(store_root: str, models_arg: str | None, *, gpu: bool):
    """A new UnitRunner actor holding one GPU (or one CPU). Not restarted by Ray: the pool gives a dead
    runner's unit to a living one (a restarted actor would wait for a GPU that left with its node)."""
    ray = import_ray()
    remote = ray.remote(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_restarts=0)(UnitRunner)
    return remote.remote(store_root, models_arg, "cuda" if gpu else "cpu")


def runner_device(device: str) -> str:
    """A GPU runner computes on CUDA when this node has it; a logical GPU (tests, CPU nodes) computes on CPU."""
    if device != "cuda":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
