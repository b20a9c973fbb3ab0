"""The extension zip: manifest, the vendored copy of backend/ipc, and an add-on that works from the zip alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

from addon_fixtures import REPO

sys.path.insert(0, str(REPO / "blender_addon"))
import build  # noqa: E402  (blender_addon/build.py)


def built_zip(tmp_path):
    return build.build(tmp_path / "dist", with_wheels=False)


def test_manifest_is_an_extension_for_blender_4_2_with_pyzmq_for_every_platform():
    manifest = tomllib.loads((REPO / "blender_addon" / "blender_manifest.toml").read_text())
    assert manifest["id"] == "diffusion_stage" and manifest["type"] == "add-on"
    assert tuple(int(n) for n in manifest["blender_version_min"].split(".")) >= (4, 2, 0)
    wheels = manifest["wheels"]
    assert all(w.startswith("./wheels/pyzmq-") and "-cp311-cp311-" in w for w in wheels)
    for platform in ("manylinux", "win_amd64", "macosx"):
        assert any(platform in w for w in wheels), platform
    assert all(any(tag in w for tag in build.PLATFORM_OF_TAG) for w in wheels)  # each one can be downloaded


def test_the_vendored_ipc_is_the_source_with_package_relative_imports(tmp_path):
    with zipfile.ZipFile(built_zip(tmp_path)) as zf:
        names = set(zf.namelist())
        sources = sorted((REPO / "backend" / "ipc").glob("*.py"))
        assert {f"vendor/dstage_ipc/{p.name}" for p in sources} <= names
        for path in sources:
            vendored = zf.read(f"vendor/dstage_ipc/{path.name}").decode()
            assert vendored == build.vendored_ipc_source(path.read_text()), path.name
            assert "from backend" not in vendored and "import backend" not in vendored
        assert "blender_manifest.toml" in names and "__init__.py" in names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert not any(n.startswith("headless/") for n in names)  # the shot runner needs a checkout
        assert "from ..vendor.dstage_ipc.take import Take" in zf.read("scene/cards.py").decode()


def test_the_rewrite_keeps_everything_but_the_import_lines():
    text = "from backend.ipc import wire\nfrom backend.ipc.auth import load_pair\nx = 'from backend.ipc'\n"
    assert build.vendored_ipc_source(text) == "from . import wire\nfrom .auth import load_pair\nx = 'from backend.ipc'\n"
    assert build.addon_source("    from backend.ipc.take import Take\n", 2) == \
        "    from ...vendor.dstage_ipc.take import Take\n"


def test_the_zip_alone_registers_and_uses_its_vendored_ipc(tmp_path):
    extract = tmp_path / "extensions"
    with zipfile.ZipFile(built_zip(tmp_path)) as zf:
        zf.extractall(extract / "diffusion_stage")
    script = textwrap.dedent("""
        import sys
        sys.path[:] = [p for p in sys.path if not p.startswith(%r) or "site-packages" in p]  # venv may live inside
        sys.path.insert(0, %r)
        import bpy, numpy as np
        import diffusion_stage
        assert diffusion_stage.ipc.SOURCE == "vendored", diffusion_stage.ipc.SOURCE
        assert "backend" not in sys.modules
        for _ in range(2):
            diffusion_stage.register()
            assert hasattr(bpy.context.scene, "stage") and bpy.ops.stage.add_card.idname() == "STAGE_OT_add_card"
            diffusion_stage.unregister()
        ipc = diffusion_stage.ipc
        frames = ipc.wire.encode("input", {"frame": 3}, {"color": np.zeros((2, 2, 3), np.uint8)})
        assert ipc.wire.decode([bytes(f) for f in frames]).get("frame") == 3
        print("standalone ok")
    """) % (str(REPO), str(extract))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "standalone ok" in done.stdout


def test_blenders_own_extension_validator_accepts_the_zip(tmp_path):
    import bpy

    tool = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    assert tool.is_file(), tool
    zip_path = built_zip(tmp_path)
    done = subprocess.run([sys.executable, str(tool), "validate", str(zip_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = tmp_path / "repo"
    installed.mkdir()
    done = subprocess.run([sys.executable, str(tool), "install-files", "--local-dir", str(installed),
                           "--blender-version", "4.2.0", "--python-version", "3.11.7", str(zip_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (installed / "diffusion_stage" / "vendor" / "dstage_ipc" / "remote_job.py").is_file()
