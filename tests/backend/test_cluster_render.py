"""The shot's final render as Ray tasks on nodes with Blender (issue 17, item 3), on a real loopback cluster.

A tiny Cycles shot is saved as a .blend by the Blender environment; rendering it in chunks on the cluster must
give the same pixels as one Blender rendering every frame, render nothing the second time, and lose nothing when
a node dies mid-render.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from tests.backend.cluster_fixtures import loopback_cluster  # noqa: I001  (first: pins Ray to loopback)

import ray  # the cluster extra, installed by `make setup`

from backend.cluster.render import missing_chunks, render_on_cluster
from backend.errors import StageError
from tests.backend.spine_fixtures import REPO, env

BLENDER_PYTHON = os.environ.get("DSTAGE_BLENDER_PYTHON", str(REPO / ".venv-blender-5.3" / "bin" / "python"))
FRAMES = (1, 6)

SHOT = """
import sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 4
scene.cycles.seed = 7
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = 64, 48
scene.frame_start, scene.frame_end = 1, 6
bpy.ops.mesh.primitive_cube_add(size=1)
cube = bpy.context.object
for frame, x in ((1, -1.5), (6, 1.5)):
    cube.location.x = x
    cube.keyframe_insert("location", frame=frame)
bpy.ops.object.light_add(type="SUN", location=(0, 0, 5))
bpy.ops.object.camera_add(location=(0, -6, 1.5), rotation=(1.35, 0, 0))
scene.camera = bpy.context.object
world = bpy.data.worlds.new("World")
scene.world = world
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    if not Path(BLENDER_PYTHON).is_file():
        pytest.fail(f"no Blender Python at {BLENDER_PYTHON}: run `make setup` or set DSTAGE_BLENDER_PYTHON")
    blend = tmp_path_factory.mktemp("shot") / "shot.blend"
    done = subprocess.run([BLENDER_PYTHON, "-c", SHOT, str(blend)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and blend.is_file(), done.stderr[-2000:]
    return blend


@pytest.fixture(scope="module")
def plain(shot, tmp_path_factory) -> dict[str, bytes]:
    """Every frame rendered by one Blender, as the runner does without a cluster."""
    folder = tmp_path_factory.mktemp("plain")
    done = subprocess.run([BLENDER_PYTHON, "-m", "blender_addon.headless.render_chunk", str(shot), "--frames",
                           f"{FRAMES[0]}-{FRAMES[1]}", "--out", str(folder)], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return pngs(folder)


@pytest.fixture(scope="module")
def cluster():
    with loopback_cluster([{"num_cpus": 1, "resources": {"blender": 1}}] * 2,
                          runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}}) as made:
        yield made


def pngs(folder: Path) -> dict[str, bytes]:
    """Each frame's pixels (Blender's PNG metadata holds the render time, so the files' bytes always differ)."""
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED).tobytes()
            for p in sorted(folder.glob("*.png")) if not p.name.startswith(".")}


def test_missing_chunks_cover_only_what_is_not_rendered(tmp_path):
    for frame in (3, 4, 9):
        (tmp_path / f"{frame:04d}.png").write_bytes(b"x")
    assert missing_chunks(tmp_path, 1, 12, 3) == [(1, 2), (5, 7), (8, 8), (10, 12)]


def test_a_chunked_render_equals_one_blender_and_a_second_renders_nothing(cluster, shot, plain, tmp_path):
    folder = tmp_path / "frames"
    counts = render_on_cluster(shot, *FRAMES, folder, blender_python=BLENDER_PYTHON, chunk=2)
    assert counts == {"frames": 6, "kept": 0, "rendered": 6}
    assert pngs(folder) == plain and len(plain) == 6
    assert len(set(plain.values())) == 6  # the cube moves: every frame differs, so order errors would show
    assert render_on_cluster(shot, *FRAMES, folder, blender_python=BLENDER_PYTHON, chunk=2) == \
        {"frames": 6, "kept": 6, "rendered": 0}


def test_a_node_dying_mid_render_loses_nothing(cluster, shot, plain, tmp_path):
    handle, nodes = cluster
    folder = tmp_path / "frames"
    killer_done = []

    def kill_when_a_frame_is_in():
        while not list(folder.glob("0*.png")):
            time.sleep(0.05)
        handle.remove_node(nodes[0], allow_graceful=False)
        killer_done.append(True)

    import threading

    killer = threading.Thread(target=kill_when_a_frame_is_in, daemon=True)
    killer.start()
    render_on_cluster(shot, *FRAMES, folder, blender_python=BLENDER_PYTHON, chunk=1)
    killer.join(30)
    assert killer_done, "the render ended before a node could be killed"
    assert pngs(folder) == plain


def test_a_cluster_without_blender_nodes_says_how_to_add_them(tmp_path, shot, monkeypatch):
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 4.0})
    with pytest.raises(StageError, match=r"blender.*ray start --address HEAD --resources"):
        render_on_cluster(shot, *FRAMES, tmp_path, blender_python=BLENDER_PYTHON)


def test_a_chunk_that_cannot_render_fails_the_shot_with_its_reason(cluster, tmp_path):
    missing = tmp_path / "gone.blend"
    with pytest.raises(StageError, match=r"did not render.*gone\.blend does not exist") as failed:
        render_on_cluster(missing, *FRAMES, tmp_path / "frames", blender_python=BLENDER_PYTHON, chunk=1)
    assert failed.value.code == "render_failed"
    assert not list((tmp_path / "frames").glob("*.png"))


def test_without_ray_the_cluster_render_says_to_pip_install_ray(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"  # an import of ray now fails as if it were not installed
            "from backend.cluster.render import main\n"
            f"sys.exit(main(['--cluster', 'auto', '--blend', 'shot.blend', '--frames', '1-6', '--out', "
            f"{str(tmp_path)!r}, '--blender-python', 'python']))\n")
    done = subprocess.run([str(REPO / ".venv-backend" / "bin" / "python"), "-c", code], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "cluster render: the cluster needs Ray" in done.stderr and "pip install ray" in done.stderr
    assert "run without --cluster" in done.stderr
