"""Shared helpers for the spine's socket and command-line tests: a real backend in another process,
synthetic green-screen frames, and loops that wait for a condition with a deadline (never a fixed sleep).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STARTUP_S = 60.0   # a loaded 2-core machine can take a while to import numpy and OpenCV


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(REPO) + os.pathsep + out.get("PYTHONPATH", "")
    out["PYTHONUNBUFFERED"] = "1"
    out.setdefault("OMP_NUM_THREADS", "1")
    return out


def dstage(*args: str, timeout: float = 120.0, env_extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run `dstage ARGS` to completion in another process (`env_extra`: variables to add)."""
    return subprocess.run([PYTHON, "-m", "backend.cli", *args], cwd=REPO, env={**env(), **(env_extra or {})},
                          capture_output=True, text=True, timeout=timeout, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def kill_dstage_mid_run(args: list[str], folder: Path, count: int, timeout: float, what: str) -> None:
    """Start `dstage ARGS`, kill -9 it once `folder` holds `count` files (no cleanup runs), and wait for it
    to die. Fails if the run ends on its own first: then nothing was interrupted."""
    proc = subprocess.Popen([PYTHON, "-m", "backend.cli", *args], cwd=REPO, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or (folder.is_dir() and len(os.listdir(folder)) >= count),
                 timeout, what)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


class Backend:
    """`dstage serve` in a subprocess on a fixed port, so it can be killed and restarted in place."""

    def __init__(self, store: Path, port: int | None = None, *extra: str, keys: Path | None = None):
        self.store = Path(store)
        self.port = port or free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.extra = list(extra) + (["--keys", str(keys)] if keys else [])
        self.proc: subprocess.Popen | None = None
        self.log = self.store.parent / f"serve-{self.port}.log"

    def start(self, wait: bool = True) -> "Backend":
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "backend.cli", "serve", "--bind", self.url, "--store", str(self.store), "--device", "cpu",
             *self.extra],
            cwd=REPO, env=env(), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self) -> None:
        """Until the process says it listens (the socket is bound; requests queue until it polls)."""
        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"dstage serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            return "listening on" in self.log.read_text()

        wait_for(listening, STARTUP_S, f"dstage serve on {self.url}", interval=0.05)

    def kill(self) -> None:
        """kill -9: no cleanup of any kind runs in the backend."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


# -- frames ------------------------------------------------------------------------------------------
SUBJECT_RGB = (200, 80, 60)
SCREEN_RGB = (0, 200, 0)


def green_frame(index: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """An HxWx3 uint8 green-screen frame with a red-brown box that moves with `index`, plus noise."""
    rng = np.random.default_rng(seed * 100003 + index)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = SCREEN_RGB
    x = size // 2 + int(size / 5 * np.sin(index / 4.0))
    image[size // 4: 3 * size // 4, x - size // 8: x + size // 8] = SUBJECT_RGB
    noise = rng.integers(-8, 9, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def write_frames(folder: Path, count: int, size: int = 128, seed: int = 0, start: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        cv2.imwrite(str(folder / f"{i:04d}.png"), green_frame(i, size, seed)[:, :, ::-1])
    return folder


class FrameSet:
    """In-memory input frames for RemoteJob: `read` gives a frame's arrays, `digests` their digests."""

    def __init__(self, count: int, size: int = 128, seed: int = 0):
        from backend.ipc.digest import digest_arrays

        self.size = (size, size)
        self.arrays = {i: {"color": green_frame(i, size, seed)} for i in range(1, count + 1)}
        self.digests = {i: digest_arrays(a) for i, a in self.arrays.items()}

    def read(self, frame: int) -> dict[str, np.ndarray]:
        return self.arrays[frame]


def reference_take(tmp: Path, frames: FrameSet, params: dict | None = None, stage: str = "matte") -> Path:
    """The take of an uninterrupted run of the same job, computed in this process by the job runner."""
    from backend.jobs import identify, run_job
    from backend.store import JobSpec, Store

    store = Store(tmp)
    for frame, arrays in frames.arrays.items():
        store.put_input(frames.digests[frame], arrays)
    spec = JobSpec(stage, dict(params or {}), sorted(frames.digests.items()), frames.size)
    identify(spec)  # canonical params, stage version, model identities: the id the CLI and server give it
    store.save_job(spec)
    return run_job(store, spec).root


def final_files(root: Path) -> dict[str, bytes]:
    """Every file of a folder under its final name (atomic writes' `.name.XXXX.tmp` files left out)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    }


def frame_files(root: Path) -> dict[str, bytes]:
    return {name: data for name, data in final_files(root).items() if name.endswith(".png")}


def assert_no_corrupt_files(root: Path) -> int:
    """Every final-named PNG decodes and every stored input loads; returns how many files were checked."""
    checked = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue
        if path.suffix == ".png":
            image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
            assert image is not None, f"{path} is under its final name but does not decode"
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                assert data.files, f"{path} holds no arrays"
                for name in data.files:
                    data[name]
        elif path.suffix == ".json":
            import json

            json.loads(path.read_text())
        checked += 1
    return checked
