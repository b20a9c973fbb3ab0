"""What the add-on holds while Blender runs: the backend it started, its status connection and the
jobs in flight. `shutdown()` (called by unregister) lets all of it go, so nothing outlives the add-on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Session:
    backend: object | None = None          # jobs.local_backend.LocalBackend this Blender started
    status_client: object | None = None    # ipc.Client used by stage.backend_connect
    runners: list = field(default_factory=list)   # operators.modal_job.JobRunner in flight


session = Session()


def shutdown() -> None:
    for runner in list(session.runners):
        runner.abandon()
    session.runners.clear()
    if session.status_client is not None:
        session.status_client.close()
        session.status_client = None
    if session.backend is not None:
        session.backend.stop()
        session.backend = None
