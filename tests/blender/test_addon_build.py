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


RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def built_zip(tmp_path):
    return build.build(tmp_path / "dist", python=RUNNING_PYTHON, with_wheels=False)


def version(text):
    return tuple(int(n) for n in text.split("."))


def test_the_zips_cover_blender_4_5_onwards_one_per_python_with_pyzmq_for_every_platform(tmp_path):
    zips = build.build_all(tmp_path / "dist", with_wheels=False)
    manifests = []
    for variant, path in zip(build.VARIANTS, zips):
        with zipfile.ZipFile(path) as zf:
            manifests.append(tomllib.loads(zf.read("blender_manifest.toml").decode()))
        wheels = variant.wheel_names()
        for platform in ("manylinux", "aarch64", "win_amd64", "macosx"):
            assert any(platform in w for w in wheels), platform
        assert all(any(tag in w for tag in build.PLATFORM_OF_TAG) for w in wheels)  # each one can be downloaded
    older, newer = manifests
    assert older["id"] == newer["id"] == "diffusion_stage" and older["type"] == "add-on"
    # 4.5 LTS … 5.0 (Python 3.11), then 5.1 onwards (Python 3.13): contiguous, no Blender in both
    assert version(older["blender_version_min"]) == (4, 5, 0)
    assert older["blender_version_max"] == newer["blender_version_min"] == "5.1.0"
    assert "blender_version_max" not in newer
    assert "wheels" not in older  # built without wheels: none listed that the zip lacks


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


def blender_ext_tool():
    import bpy

    tool = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    assert tool.is_file(), tool
    return tool


def blender_ext_module():
    """Blender's own extension tool as a module (its rules for which Pythons a wheel list allows)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("blender_ext", blender_ext_tool())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accepts_python(python_versions, python: str) -> bool:
    """Blender's filter: the major.minor or the bare major version is listed."""
    listed = {".".join(str(n) for n in v) for v in python_versions}
    return python in listed or python.split(".")[0] in listed


def test_each_zip_with_its_real_wheels_validates_and_installs_only_on_its_python(tmp_path):
    tool, ext = blender_ext_tool(), blender_ext_module()
    # real wheels from PyPI, kept in build/wheels between runs (make addon shares the cache)
    zips = build.build_all(tmp_path / "dist", wheels_dir=REPO / "build" / "wheels")
    for variant, zip_path in zip(build.VARIANTS, zips):
        done = subprocess.run([sys.executable, str(tool), "validate", str(zip_path)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        with zipfile.ZipFile(zip_path) as zf:
            manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
            listed = [Path(w).name for w in manifest["wheels"]]
            assert sorted(listed) == sorted(n.rsplit("/", 1)[-1] for n in zf.namelist() if n.startswith("wheels/"))
        pythons = ext.python_versions_from_wheels(manifest["wheels"])
        assert not isinstance(pythons, str), pythons
        assert accepts_python(pythons, variant.python), (variant.python, pythons)
        # cp311 wheels pin that zip to 3.11 (why there are two zips); the abi3 zip's range starts at 5.1
        assert accepts_python(pythons, "3.13") == (variant.python == "3.13"), pythons
        installed = tmp_path / f"repo-{variant.python}"
        installed.mkdir()
        done = subprocess.run([sys.executable, str(tool), "install-files", "--local-dir", str(installed),
                               "--blender-version", manifest["blender_version_min"],
                               "--python-version", f"{variant.python}.0", str(zip_path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (installed / "diffusion_stage" / "vendor" / "dstage_ipc" / "remote_job.py").is_file()


def test_the_linux_wheel_in_the_zip_for_this_python_imports_here(tmp_path):
    """The zip for the running Blender's Python carries a pyzmq this Python can load."""
    zip_path = build.build(tmp_path / "dist", python=RUNNING_PYTHON, wheels_dir=REPO / "build" / "wheels")
    with zipfile.ZipFile(zip_path) as zf:
        wheel = next(n for n in zf.namelist() if n.startswith("wheels/") and "manylinux" in n and "x86_64" in n)
        zf.extract(wheel, tmp_path)
    with zipfile.ZipFile(tmp_path / wheel) as zf:
        zf.extractall(tmp_path / "site")
    script = "import sys; sys.path.insert(0, %r); import zmq; assert zmq.__file__.startswith(%r); print(zmq.zmq_version())"
    done = subprocess.run([sys.executable, "-I", "-c", script % (str(tmp_path / "site"), str(tmp_path / "site"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_import_error_inside_the_vendored_code_names_the_real_missing_module(tmp_path):
    """A Blender without numpy must hear "numpy", not a fallback's "No module named 'backend'"."""
    extract = tmp_path / "extensions"
    with zipfile.ZipFile(built_zip(tmp_path)) as zf:
        zf.extractall(extract / "diffusion_stage")
    script = textwrap.dedent("""
        import sys
        sys.path[:] = [p for p in sys.path if not p.startswith(%r) or "site-packages" in p]
        sys.path.insert(0, %r)
        sys.modules["numpy"] = None  # this Python has no numpy: `import numpy` raises ModuleNotFoundError
        try:
            import diffusion_stage.ipc
        except ImportError as e:
            print("error:", type(e).__name__, e.name, e)
        else:
            print("imported", diffusion_stage.ipc.SOURCE)
    """) % (str(REPO), str(extract))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "error: ModuleNotFoundError numpy" in done.stdout, done.stdout
    assert "backend" not in done.stdout


def test_without_vendored_code_or_a_checkout_the_error_says_which_zip_to_install(tmp_path):
    extract = tmp_path / "extensions" / "diffusion_stage"
    with zipfile.ZipFile(built_zip(tmp_path)) as zf:
        zf.extractall(extract)
    import shutil

    shutil.rmtree(extract / "vendor")
    script = textwrap.dedent("""
        import sys
        sys.path[:] = [p for p in sys.path if not p.startswith(%r) or "site-packages" in p]
        sys.path.insert(0, %r)
        try:
            import diffusion_stage.ipc
        except ImportError as e:
            print("error:", e)
    """) % (str(REPO), str(extract.parent))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert "vendor/dstage_ipc" in done.stdout and "make addon" in done.stdout, done.stdout + done.stderr[-2000:]
