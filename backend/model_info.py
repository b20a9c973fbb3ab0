"""What `dstage models check` says about each model beyond where it is: its licence and its size on disk.

The licence comes from the model card's front matter (`license:` in the README.md that hub repositories
carry, kept in the local cache with the weights), else from a short table of the defaults whose licence is
known here, else "see the model card". Sizes follow the cache's symlinks to the blobs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Hub id prefixes whose licence is known without the model card (the project's default models).
KNOWN_LICENCES = {
    "Wan-AI/": "Apache-2.0",
    "stable-diffusion-v1-5/": "CreativeML OpenRAIL-M",
    "lllyasviel/control_v11": "OpenRAIL",
    "depth-anything/Depth-Anything-V2-Small": "Apache-2.0",
    "depth-anything/Depth-Anything-V2-Base": "CC-BY-NC-4.0",
    "depth-anything/Depth-Anything-V2-Large": "CC-BY-NC-4.0",
}
UNKNOWN = "see the model card"


def card_licence(folder: Path) -> str | None:
    """`license:` from a model card's YAML front matter, if the folder has one."""
    card = folder / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return None
    match = re.match(r"---\s*\n(.*?)\n---", text, re.S)
    if not match:
        return None
    found = re.search(r"^license:\s*['\"]?([^'\"\n]+)", match.group(1), re.M)
    if not found:
        return None
    name = found.group(1).strip()
    return {"apache-2.0": "Apache-2.0", "mit": "MIT", "openrail": "OpenRAIL", "creativeml-openrail-m":
            "CreativeML OpenRAIL-M", "cc-by-nc-4.0": "CC-BY-NC-4.0"}.get(name.lower(), name)


def licence(model: str, path: str | None) -> str:
    folder = Path(path) if path else None
    if folder is not None and folder.is_file():
        folder = folder.parent
    found = card_licence(folder) if folder is not None else None
    if found:
        return found
    return next((name for prefix, name in KNOWN_LICENCES.items() if model.startswith(prefix)), UNKNOWN)


def size_on_disk(path: str | None) -> int | None:
    """Bytes of a file, or of every file under a folder (symlinks followed, each target counted once)."""
    if not path:
        return None
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    if not root.is_dir():
        return None
    seen, total = set(), 0
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            real = os.path.realpath(os.path.join(folder, name))
            if real in seen:
                continue
            seen.add(real)
            try:
                total += os.stat(real).st_size
            except OSError:
                pass
    return total


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
