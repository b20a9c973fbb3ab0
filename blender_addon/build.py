"""Build the Blender extension zips: `python blender_addon/build.py` -> one zip per Blender Python in dist/.

Blender 4.5 … 5.0 run Python 3.11, Blender 5.1 and later Python 3.13, and an extension's wheels decide
which Pythons it installs on (Blender drops the generic abi3 version once a cp311 wheel is listed), so
there is one zip for each:
    dist/diffusion_stage-<version>-blender-4.5-to-5.0.zip    cp311 pyzmq wheels, blender_version_max 5.1.0
    dist/diffusion_stage-<version>-blender-5.1-and-later.zip  cp312-abi3 pyzmq wheels, blender_version_min 5.1.0
Each holds the add-on, a copy of backend/ipc as the package `vendor/dstage_ipc` (its imports made
relative, so it needs no `backend` package), and pyzmq wheels for every platform, downloaded from PyPI;
build.py writes the Blender range and the wheel list into each zip's manifest. Blender's "Install from
Disk" takes the zip as is.

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
PYZMQ_VERSION = "27.1.0"


class Variant:
    """One zip: the Blender Python it is for, the Blenders that run that Python, the pyzmq wheels' ABI tag."""

    def __init__(self, python, blender_min, blender_max, abi, label):
        self.python, self.blender_min, self.blender_max, self.abi, self.label = python, blender_min, blender_max, abi, label

    def wheel_names(self) -> list[str]:
        return [f"pyzmq-{PYZMQ_VERSION}-{self.abi}-{tag}.whl" for tag in WHEEL_PLATFORM_TAGS]


# blender_version_max is exclusive: 5.1 is the first Blender with Python 3.13
VARIANTS = (
    Variant("3.11", "4.5.0", "5.1.0", "cp311-cp311", "blender-4.5-to-5.0"),
    Variant("3.13", "5.1.0", None, "cp312-abi3", "blender-5.1-and-later"),
)
# the full platform part of each pyzmq wheel's name (as PyPI names the file)
WHEEL_PLATFORM_TAGS = (
    "manylinux_2_26_x86_64.manylinux_2_28_x86_64",
    "manylinux_2_26_aarch64.manylinux_2_28_aarch64",
    "win_amd64",
    "macosx_10_15_universal2",
)
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


def variant_manifest(text: str, variant: Variant, wheels: list[str]) -> str:
    """The repository's manifest as it goes into `variant`'s zip: its Blender range and its wheels."""
    text = re.sub(r'(?m)^blender_version_min = ".*"$', f'blender_version_min = "{variant.blender_min}"', text)
    text = re.sub(r'(?m)^blender_version_max = ".*"\n', "", text)
    extra = f'blender_version_max = "{variant.blender_max}"\n' if variant.blender_max else ""
    if wheels:
        extra += "wheels = [\n" + "".join(f'  "./wheels/{name}",\n' for name in wheels) + "]\n"
    head, sep, tables = text.partition("\n[")  # top-level keys go before the first table
    return f"{head.rstrip()}\n\n{extra}{sep.lstrip()}{tables}" if sep else f"{text.rstrip()}\n\n{extra}"


def stage_tree(dest: Path, *, variant: Variant, with_wheels: bool) -> None:
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
    manifest = dest / "blender_manifest.toml"
    manifest.write_text(variant_manifest(manifest.read_text(), variant, variant.wheel_names() if with_wheels else []))


def fetch_wheels(variant: Variant, cache: Path) -> list[Path]:
    """The variant's wheels, from `cache` or downloaded from PyPI into it."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for name in variant.wheel_names():
        target = cache / name
        if not target.is_file():
            dist, version = name.split("-")[:2]
            tag = next((t for t in PLATFORM_OF_TAG if t in name), None)
            if tag is None:
                raise BuildError(f"no download platform known for {name}; add its tag to PLATFORM_OF_TAG")
            subprocess.run([sys.executable, "-m", "pip", "download", f"{dist}=={version}", "--only-binary=:all:",
                            "--no-deps", "--python-version", variant.python, "--platform", PLATFORM_OF_TAG[tag],
                            "-d", str(cache)], check=True)
            if not target.is_file():
                raise BuildError(f"pip did not fetch {name}; update the manifest's wheels to the files PyPI has "
                                 f"(see {cache})")
        out.append(target)
    return out


def variant_for(python: str) -> Variant:
    for variant in VARIANTS:
        if variant.python == python:
            return variant
    raise BuildError(f"no zip is built for Python {python}; Blender's Pythons: {', '.join(v.python for v in VARIANTS)}")


def build_all(out_dir: Path, *, wheels_dir: Path | None = None, with_wheels: bool = True) -> list[Path]:
    """Every variant's zip."""
    return [build(out_dir, python=v.python, wheels_dir=wheels_dir, with_wheels=with_wheels) for v in VARIANTS]


def build(out_dir: Path, *, python: str = "3.13", wheels_dir: Path | None = None, with_wheels: bool = True) -> Path:
    """The zip for Blenders running `python` (3.11: 4.5 … 5.0; 3.13: 5.1 and later)."""
    variant = variant_for(python)
    manifest = read_manifest()
    zip_path = Path(out_dir) / f"{manifest['id']}-{manifest['version']}-{variant.label}.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / manifest["id"]
        stage_tree(root, variant=variant, with_wheels=with_wheels)
        if with_wheels:
            for wheel in fetch_wheels(variant, Path(wheels_dir or REPO / "build" / "wheels")):
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
        paths = build_all(Path(args.out), wheels_dir=Path(args.wheels_dir) if args.wheels_dir else None,
                          with_wheels=not args.no_wheels)
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
