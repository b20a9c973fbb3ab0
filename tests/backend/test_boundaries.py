"""The design's layering, checked: what each part of the tree may import (DESIGN.md, 'Two processes')."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def offenders(folder: str, allowed: set[str], allowed_local: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "vendor" in path.parts:
            continue
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in allowed or any(name == p or name.startswith(p + ".") for p in allowed_local):
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return bad


def test_ipc_needs_only_stdlib_numpy_zmq():
    assert offenders("backend/ipc", STDLIB | {"numpy", "zmq"}, ("backend.ipc",)) == []


def test_pipelines_never_touch_sockets_or_blender():
    bad = [o for o in offenders("backend/pipelines", {"__never__"}, ()) if o.split()[-1].split(".")[0] in ("zmq", "bpy")]
    assert bad == []


def test_addon_imports_only_what_blender_has():
    allowed = STDLIB | {"bpy", "mathutils", "numpy", "zmq", "bpy_extras", "bmesh", "gpu", "addon_utils", "blf",
                        "bl_ui", "bl_operators", "blender_addon"}
    assert offenders("blender_addon", allowed, ("backend.ipc",)) == []


def test_lower_layers_do_not_import_upper_ones():
    # stages and pipelines never reach up into the server, the CLI or the service
    upper = ("backend.cli", "backend.service", "backend.ipc.server", "backend.ipc.client", "backend.ipc.remote_job")
    bad = []
    for folder in ("backend/pipelines", "backend/stages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            bad += [f"{path.relative_to(ROOT)}:{ln} imports {n}" for ln, n in imports(path)
                    if any(n == u or n.startswith(u + ".") for u in upper)]
    assert bad == []


def test_digest_matches_the_value_blenders_side_checks():
    # tests/blender/test_ipc_in_blender.py asserts the same constant under numpy < 2
    import numpy as np

    from backend.ipc.digest import digest_arrays

    arrays = {"color": np.arange(24, dtype=np.uint8).reshape(2, 4, 3)}
    assert digest_arrays(arrays) == "74f4b01e4863ac5dd006f4dd58bae4a7f90613e6"


def test_the_server_starts_without_loading_the_model_libraries():
    # torch + diffusers cost seconds of start-up; they load with the first job that needs them
    import subprocess

    code = ("import sys, backend.service, backend.stages, backend.cli; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'rembg', 'controlnet_aux') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
