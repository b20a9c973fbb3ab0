"""Load a rembg session: a named rembg model already on this machine, or a custom ONNX file.

rembg downloads a named model on first use; offline (the default) we check for its file first so a
missing model is a clear error, not a hanging download. rembg 2.0.86 loads custom ONNX files only from
inside its own model folder (REMBG_HOME, or ~/.rembg), and we keep that rule: it is what stops a path
from the wire loading an arbitrary file.
"""

from __future__ import annotations

import os
from functools import lru_cache

from backend.loaders.missing import ModelMissing, looks_like_path, require_local
from backend.errors import StageError

# rembg's single-mask models that matte a subject (the names rembg uses)
REMBG_MODELS = (
    "u2net_human_seg", "isnet-general-use", "birefnet-general", "birefnet-general-lite", "birefnet-portrait",
    "birefnet-dis", "birefnet-hrsod", "birefnet-cod", "birefnet-massive", "u2net", "u2netp", "silueta",
    "isnet-anime", "bria-rmbg",
)
DEFAULT_MATTE_MODEL = "u2net_human_seg"
CUSTOM_KINDS = ("u2net_custom", "dis_custom")   # how rembg feeds a custom net: 320² ImageNet-normalised, or 1024²


@lru_cache(maxsize=4)  # sessions load once and stay warm between jobs
def load_matte_session(source: str, *, local_files_only: bool = True, custom_kind: str = "u2net_custom",
                       role: str = "matte"):
    """A rembg session for a model name (see REMBG_MODELS) or the path of a custom .onnx file."""
    if looks_like_path(source):
        return _custom_session(source, custom_kind, role)
    from rembg import new_session
    from rembg.sessions import sessions

    if source not in REMBG_MODELS or source not in sessions:
        raise StageError(f"unknown rembg model {source!r}; choose one of {', '.join(REMBG_MODELS)} "
                         "or give the path of an .onnx file", code="bad_params")
    session_class = sessions[source]
    fname = f"{source}.onnx"
    if local_files_only and session_class.resolve_existing(fname) is None:
        expected = os.path.join(session_class.model_dir(), fname)
        raise ModelMissing(expected, role, f"run `rembg d {source}` on a machine with network and copy {expected} here")
    return new_session(source)


def _custom_session(source: str, custom_kind: str, role: str):
    from rembg import new_session

    if custom_kind not in CUSTOM_KINDS:
        raise StageError(f"custom_kind {custom_kind!r} is not accepted; choose one of {', '.join(CUSTOM_KINDS)}",
                         code="bad_params")
    path = require_local(source, role, "export your matting net to ONNX and point the config at the .onnx file")
    try:
        return new_session(custom_kind, model_path=str(path))
    except ValueError as e:
        if "within the models directory" not in str(e):
            raise
        raise StageError(
            f"rembg loads custom models only from inside its model folder; {path} is outside it. "
            f"Move the file under {str(e).rsplit(': ', 1)[-1]} or set REMBG_HOME to a folder that holds it",
            code="model_location",
        ) from e
