"""Starting a backend on this machine: the command line from the preferences, and the child process."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

DEFAULT_ARGS = "-m backend.cli serve --bind {bind} --store {store} --device {device}"


class LaunchError(ValueError):
    """A backend that cannot be started as configured; the message names the preference to fix."""


def backend_argv(python: str, args_template: str, *, bind: str, store: str, device: str = "",
                 models: str = "") -> list[str]:
    """The command that starts the backend. `args_template` may use {bind}, {store}, {device}, {models}."""
    if not python:
        raise LaunchError("set Backend Python in the add-on's preferences: the python of the backend's "
                          "environment (for example .venv-backend/bin/python)")
    if not Path(python).is_file():
        raise LaunchError(f"Backend Python {python} does not exist; point it to the backend environment's python")
    if not store:
        raise LaunchError("set Store Folder in the add-on's preferences: where the backend keeps jobs and frames")
    try:
        args = [part.format(bind=bind, store=os.path.expanduser(store), device=device or "", models=models)
                for part in shlex.split(args_template)]
    except (KeyError, IndexError, ValueError) as e:
        raise LaunchError(f"Backend Arguments {args_template!r} do not parse ({e}); "
                          "use {bind}, {store}, {device} and {models} only") from None
    args = _drop_empty_options(args)
    if models and "{models}" not in args_template:
        args += ["--models", models]
    return [python, *args]


def _drop_empty_options(args: list[str]) -> list[str]:
    """`--device ''` (no device chosen) is left out rather than passed empty."""
    out: list[str] = []
    for part in args:
        if part == "" and out and out[-1].startswith("--"):
            out.pop()
            continue
        out.append(part)
    return out


class LocalBackend:
    """The backend child process this Blender started, with its output in a log file."""

    def __init__(self, argv: list[str], log_path: str | Path, cwd: str | None = None):
        self.argv = argv
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=cwd or None)
        except OSError as e:
            self._log.close()
            raise LaunchError(f"could not start {argv[0]}: {e}") from None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, wait_s: float = 5.0) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
