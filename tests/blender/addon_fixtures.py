"""Helpers for the add-on tests: the add-on enabled in real bpy, a backend subprocess, synthetic footage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import bpy  # noqa: E402  (first: it puts Blender's own modules, addon_utils among them, on the path)
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

from backend.ipc.imagefiles import png_bytes  # noqa: E402

ADDON = "blender_addon"
BACKEND_PYTHON = os.environ.get("DSTAGE_BACKEND_PYTHON", str(REPO / ".venv-backend" / "bin" / "python"))


def fresh_scene(size=(64, 64)) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = size
    return scene


def enable_addon(**prefs):
    """Enable the add-on the way Preferences > Add-ons does, and set its preferences."""
    addon_utils.enable(ADDON, default_set=True)
    addon = bpy.context.preferences.addons[ADDON]
    for key, value in prefs.items():
        setattr(addon.preferences, key, value)
    return addon.preferences


def disable_addon() -> None:
    addon_utils.disable(ADDON, default_set=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackendProcess:
    """`dstage serve` in the backend's own environment, on a free loopback port, with its own store."""

    def __init__(self, store: Path, models: Path | None = None):
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.log = open(store.parent / "backend.log", "wb")
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        if models is None:
            models = store.parent / "models.json"  # no model weights: the matte stage needs none
            models.write_text("{}")
        self.process = subprocess.Popen(
            [BACKEND_PYTHON, "-m", "backend.cli", "serve", "--bind", self.url, "--store", str(store), "--device", "cpu",
             "--models", str(models)],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        from blender_addon.ipc import Client

        deadline = time.monotonic() + timeout_s
        with Client(self.url, timeout_s=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"backend exited: {Path(self.log.name).read_text()[-2000:]}")
                try:
                    client.request("ping", timeout_s=1.0)
                    return
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise

    def status(self) -> dict:
        from blender_addon.ipc import Client

        with Client(self.url, timeout_s=5.0) as client:
            return client.request("status").header

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def build_tiny_models(root: Path, build_script: str) -> Path:
    """Run `build_script` in the backend's own environment (the backend tests' fixtures importable, `root` as
    argv[1]): it builds tiny random-weight models under `root` and lists them in root/models.json, returned."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'backend'}", "OMP_NUM_THREADS": "1"}
    subprocess.run([BACKEND_PYTHON, "-c", build_script, str(root)], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=600)
    return root / "models.json"


def backend_with_tiny_models(tmp_path_factory, build_script: str) -> BackendProcess:
    """A backend serving the tiny random-weight models that `build_script` builds (see build_tiny_models)."""
    models = build_tiny_models(tmp_path_factory.mktemp("tiny_models"), build_script)
    return BackendProcess(tmp_path_factory.mktemp("backend") / "store", models=models)


def figure_on_green(width: int, height: int, frame: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A warm-coloured figure (ellipse) moving across a green screen; returns (rgb uint8, truth mask)."""
    rng = np.random.default_rng(seed * 1000 + frame)
    y, x = np.mgrid[0:height, 0:width]
    cx = width * (0.35 + 0.02 * frame)
    inside = ((x - cx) / (width * 0.15)) ** 2 + ((y - height * 0.55) / (height * 0.35)) ** 2 <= 1.0
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (30, 200, 40)
    image[inside] = (200, 120, 90)
    noise = rng.integers(-6, 7, size=image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), inside


def write_clip(folder: Path, frames: int, width: int, height: int, seed: int = 0, first: int = 1) -> dict[int, np.ndarray]:
    """Numbered PNGs clip_0001.png ...; returns each frame's truth mask."""
    folder.mkdir(parents=True, exist_ok=True)
    masks = {}
    for frame in range(first, first + frames):
        rgb, inside = figure_on_green(width, height, frame, seed)
        (folder / f"clip_{frame:04d}.png").write_bytes(png_bytes(rgb))
        masks[frame] = inside
    return masks


def read_alpha(take, frame: int) -> np.ndarray:
    """A take's matte as float 0..1 (png8 or png16)."""
    from blender_addon.scene.frames import read_frame

    alpha = read_frame(take, "alpha", frame)
    return alpha.astype(np.float64) / {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(alpha.dtype, 1.0)
