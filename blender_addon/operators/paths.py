"""Where takes go on disk."""

from __future__ import annotations

import re
from pathlib import Path

import bpy


def takes_root(context) -> Path:
    text = context.scene.stage.takes_dir
    if text.startswith("//") and not bpy.data.filepath:
        raise ValueError("the Takes folder is relative to the .blend (//...), which is not saved yet; "
                         "save the file or set an absolute Takes folder in Stage > Cards")
    return Path(bpy.path.abspath(text)).resolve()


def take_name(text: str) -> str:
    """A folder name from any text: letters, digits, dot, dash, underscore."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "take"
    return name
