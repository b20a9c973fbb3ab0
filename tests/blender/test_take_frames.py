"""The add-on reads take frames through Blender's own image loader: the backend's ZIP-compressed EXR
(written by the backend's OpenEXR bindings, in the backend's environment) and its own uncompressed ones."""

from __future__ import annotations

import subprocess

import numpy as np
from addon_fixtures import BACKEND_PYTHON, REPO

import bpy  # noqa: F401  (Blender's module: read_frame loads through it)
from backend.ipc.imagefiles import exr_bytes
from backend.ipc.take import Layer, Take, TakeInfo
from blender_addon.scene.frames import read_frame


def test_exr_layers_from_the_backend_and_the_add_on_read_back_exactly(tmp_path):
    depth = (np.random.default_rng(4).random((24, 40)) * 30).astype(np.float32)
    np.save(tmp_path / "depth.npy", depth)
    take = Take.create(tmp_path / "take", TakeInfo(1, 2, 40, 24, layers={"depth": Layer("exr", units="m")}))
    script = ("import sys, numpy as np; from backend.imageio import encode_layer; from backend.ipc.take import Layer; "
              "sys.stdout.buffer.write(encode_layer(Layer('exr'), np.load(sys.argv[1])))")
    backend = subprocess.run([BACKEND_PYTHON, "-c", script, str(tmp_path / "depth.npy")], cwd=REPO,
                             capture_output=True, check=True, timeout=120).stdout
    assert backend[:4] == b"\x76\x2f\x31\x01" and b"compression" in backend[:400]
    take.write_file("depth", 1, backend)
    take.write_file("depth", 2, exr_bytes({"Y": depth * 2}))  # the add-on's own uncompressed writer
    first, second = read_frame(take, "depth", 1), read_frame(take, "depth", 2)
    assert first.shape == (24, 40) and first.dtype == np.float32
    assert np.array_equal(first, depth)
    assert np.array_equal(second, depth * 2)
