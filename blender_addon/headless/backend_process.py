"""Reaching the backend, or starting one: `python -m backend.cli serve` in the backend's own environment.

The backend needs numpy 2, torch, OpenCV ..., Blender's Python has none of them, so the backend always runs
as a separate process with its own interpreter. Which one: `--backend-python`, else $DSTAGE_BACKEND_PYTHON,
else `.venv-backend/bin/python` next to the repository or next to Blender's own environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from backend.ipc.client import Client, RemoteError

REPO = Path(__file__).resolve().parents[2]


class BackendUnavailable(RuntimeError):
    """No backend answers and none could be started; the message says what was tried and what to do."""


def find_backend_python(explicit: str | None = None) -> Path:
    candidates = [explicit, os.environ.get("DSTAGE_BACKEND_PYTHON"),
                  REPO / ".venv-backend/bin/python", Path(sys.prefix).parent / ".venv-backend/bin/python"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BackendUnavailable(
        "cannot find the backend's Python: pass --backend-python PATH or set DSTAGE_BACKEND_PYTHON "
        "(`make setup` creates .venv-backend); looked in " + ", ".join(str(c) for c in candidates[2:]))


def ping(url: str, timeout_s: float = 1.0, keys=None) -> dict | None:
    """The server's status when a backend answers at `url` within `timeout_s`, else None."""
    client = Client(url, keys=keys, timeout_s=timeout_s)
    try:
        return client.request("status", timeout_s=timeout_s).header
    except (TimeoutError, RemoteError):
        return None
    finally:
        client.close()


class BackendProcess:
    """A backend we reach at `url`; started (and later stopped) by us when nobody answers there."""

    def __init__(self, url: str, *, store: Path, log_path: Path, python: str | None = None, device: str = "cpu",
                 models: str | None = None, start: bool = True, start_timeout_s: float = 120.0):
        self.url = url
        self.process: subprocess.Popen | None = None
        self.status = ping(url)
        if self.status is not None:
            return
        if not start:
            raise BackendUnavailable(f"no backend answers at {url}; start one with `dstage serve --bind {url}` "
                                     "or drop --no-start to let this command start it")
        if not url.startswith(("tcp://127.0.0.1:", "tcp://localhost:", "ipc://")):
            raise BackendUnavailable(f"no backend answers at {url}, and this command only starts backends on this "
                                     "machine (tcp://127.0.0.1:PORT); start it there with `dstage serve`")
        command = [str(find_backend_python(python)), "-m", "backend.cli", "serve", "--bind", url,
                   "--store", str(store), "--device", device]
        if models:
            command += ["--models", models]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout_s
        while self.status is None:
            if self.process.poll() is not None:
                self._log.close()
                raise BackendUnavailable(f"the backend exited at start (status {self.process.returncode}); "
                                         f"its log {log_path} ends with:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BackendUnavailable(f"the backend started but did not answer at {url} within "
                                         f"{start_timeout_s:.0f} s; see {log_path}")
            self.status = ping(url, timeout_s=1.0)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.process = None
