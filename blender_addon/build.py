"""Build the Blender extension zip: `python blender_addon/build.py` -> dist/diffusion_stage-<version>.zip.

The zip holds the add-on, a copy of backend/ipc as the package `vendor/dstage_ipc` (its imports made
relative, so it needs no `backend` package), and the pyzmq wheels the manifest lists, downloaded from
PyPI for Blender's Python 3.11 on each platform. Blender's "Install from Disk" takes the zip as is.

    python blender_addon/build.py [--out dist] [--wheels-dir build/wheels] [--no-wheels]

--no-wheels leaves the wheels out and drops them from the zip's manifest (for tests and offline checks;
such a zip needs pyzmq already present in Blender's Python).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ADDON = Path(__file__).resolve().parent
REPO = ADDON.parent
IPC = REPO / "backend" / "ipc"
VENDOR = "vendor/dstage_ipc"
# headless/ is the shot runner: it runs from a checkout (it builds sample_scenes), never inside Blender
SKIP_NAMES = {"__pycache__", "build.py", "build.mk", "vendor", "headless"}
PYTHON_VERSION = "3.11"
# manifest wheel tag -> the pip --platform that fetches it
PLATFORM_OF_TAG = {
    "manylinux_2_28_x86_64": "manylinux_2_28_x86_64",
    "manylinux_2_28_aarch64": "manylinux_2_28_aarch64",
    "win_amd64": "win_amd64",
    "macosx_10_15_universal2": "macosx_10_15_universal2",
}

_FROM_IPC = re.compile(r"^(\s*)from backend\.ipc(\.(\w+))? import ", re.M)
_ANY_BACKEND = re.compile(r"^\s*(from|import)\s+backend\b", re.M)


class BuildError(RuntimeError):
    pass


def vendored_ipc_source(text: str) -> str:
    """A backend/ipc module as it reads inside vendor/dstage_ipc: package-relative imports."""
    return _FROM_IPC.sub(lambda m: f"{m.group(1)}from .{m.group(3) or ''} import ", text)


def addon_source(text: str, depth: int) -> str:
    """An add-on module at `depth` folders below the add-on root, importing the vendored ipc."""
    dots = "." * (depth + 1)
    return _FROM_IPC.sub(
        lambda m: f"{m.group(1)}from {dots}{VENDOR.replace('/', '.')}{'.' + m.group(3) if m.group(3) else ''} import ",
        text)


def read_manifest() -> dict:
    return tomllib.loads((ADDON / "blender_manifest.toml").read_text())


def stage_tree(dest: Path, *, with_wheels: bool) -> None:
    """The extension's files under `dest`, as they go into the zip."""
    for path in sorted(ADDON.rglob("*")):
        rel = path.relative_to(ADDON)
        if any(part in SKIP_NAMES for part in rel.parts) or path.is_dir() or path.suffix == ".pyc":
            continue
        if rel.parts[0] == "wheels":
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py" and rel != Path("ipc.py"):
            out.write_text(addon_source(path.read_text(), len(rel.parts) - 1))
        else:
            shutil.copy2(path, out)
    vendor = dest / VENDOR
    vendor.mkdir(parents=True)
    (dest / "vendor" / "__init__.py").write_text('"""Code copied into the extension at build time."""\n')
    for path in sorted(IPC.glob("*.py")):
        (vendor / path.name).write_text(vendored_ipc_source(path.read_text()))
    for path in sorted(dest.rglob("*.py")):
        if path.relative_to(dest) != Path("ipc.py") and _ANY_BACKEND.search(path.read_text()):
            raise BuildError(f"{path.relative_to(dest)} still imports the backend package, which the extension "
                             "does not carry; import what you need from the add-on's ipc module")
    if not with_wheels:
        manifest = dest / "blender_manifest.toml"
        text = re.sub(r"(?ms)^wheels = \[.*?^\]\n", "", manifest.read_text())
        manifest.write_text(text)


def fetch_wheels(wheels: list[str], cache: Path) -> list[Path]:
    """The manifest's wheels, from `cache` or downloaded from PyPI into it."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for entry in wheels:
        name = Path(entry).name
        target = cache / name
        if not target.is_file():
            dist, version = name.split("-")[:2]
            tag = next((t for t in PLATFORM_OF_TAG if t in name), None)
            if tag is None:
                raise BuildError(f"no download platform known for {name}; add its tag to PLATFORM_OF_TAG")
            subprocess.run([sys.executable, "-m", "pip", "download", f"{dist}=={version}", "--only-binary=:all:",
                            "--no-deps", "--python-version", PYTHON_VERSION, "--platform", PLATFORM_OF_TAG[tag],
                            "-d", str(cache)], check=True)
            if not target.is_file():
                raise BuildError(f"pip did not fetch {name}; update the manifest's wheels to the files PyPI has "
                                 f"(see {cache})")
        out.append(target)
    return out


def build(out_dir: Path, *, wheels_dir: Path | None = None, with_wheels: bool = True) -> Path:
    manifest = read_manifest()
    zip_path = Path(out_dir) / f"{manifest['id']}-{manifest['version']}.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / manifest["id"]
        stage_tree(root, with_wheels=with_wheels)
        if with_wheels:
            wheels = manifest.get("wheels", [])
            for wheel in fetch_wheels(wheels, Path(wheels_dir or REPO / "build" / "wheels")):
                dest = root / "wheels" / wheel.name
                dest.parent.mkdir(exist_ok=True)
                shutil.copy2(wheel, dest)
        partial = zip_path.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(root).as_posix())
        partial.replace(zip_path)
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "dist"))
    parser.add_argument("--wheels-dir", help="where downloaded wheels are kept (default build/wheels)")
    parser.add_argument("--no-wheels", action="store_true", help="leave the pyzmq wheels out (tests, offline)")
    args = parser.parse_args(argv)
    try:
        path = build(Path(args.out), wheels_dir=Path(args.wheels_dir) if args.wheels_dir else None,
                     with_wheels=not args.no_wheels)
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
