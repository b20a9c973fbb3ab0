"""A job's identity: everything its output depends on, so a cached take is never stale.

A job id hashes (see JobSpec.job_id):
    stage, version   the stage's name and its `version`, which the stage bumps when a change to it (or to
                     a pipeline it runs) alters its output: the next submission computes anew
    params, size     the canonical parameters (defaults filled in) and the source size
    frames           the content digest of every input frame
    sides            the content digest of every side input (keyframes, clean plates, reference images);
                     side inputs are uploaded into the store like frames, never read from a server path
    models           for every model role the stage declares for these parameters, the identity of the
                     weights it resolves to: a local file or folder by the size and modification time of
                     each file in it, a hub id by its revision and the cached snapshot's commit

So pointing a role at other weights, rewriting a model file, changing a keyframe image or bumping a stage's
version gives a new id (and a new take), while an unchanged job keeps its id and resumes.

Model identities are read offline (stat calls and the local Hugging Face cache, never the network), so
a submission stays quick: a role whose weights are not on this machine is recorded as missing, and the job
itself reports it (or downloads it, where the models file allows) when it loads the model.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from backend.errors import ModelMissing, StageError

REMBG_PREFIX = "rembg:"   # a model role naming one of rembg's own models, which rembg keeps in its folder


def stage_version(stage: Any) -> int:
    version = getattr(stage, "version", None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TypeError(f"stage {getattr(stage, 'name', stage)!r} must declare `version = 1` (an int, bumped "
                        "whenever a change would alter its output); see backend/stages/base.py")
    return version


def declared_roles(stage: Any, params: Any, models: Any) -> list[str]:
    """The model roles a stage says it loads for these parameters (none when it loads no model)."""
    declare = getattr(stage, "model_roles", None)
    return sorted(set(declare(params, models))) if declare is not None else []


def declared_sides(stage: Any, params: Any) -> dict[str, str]:
    """The side inputs a stage needs for these parameters: name -> what it holds (for messages)."""
    declare = getattr(stage, "side_inputs", None)
    return dict(declare(params)) if declare is not None else {}


def models_identity(roles: list[str], models: Any) -> dict[str, dict]:
    """{role: identity of its weights} for each role; `models` is a registry, a {role: path} dict or None."""
    registry = offline_models(models)
    return {role: model_identity(role, registry) for role in roles}


def model_identity(role: str, registry: Any) -> dict:
    if role.startswith(REMBG_PREFIX):
        return _rembg_identity(role[len(REMBG_PREFIX):])
    if isinstance(registry, dict):
        if role not in registry:
            return {"missing": f"no {role!r} entry"}
        return path_identity(Path(registry[role]))
    try:
        spec = registry.spec(role)
    except ModelMissing:
        return {"missing": "(not configured)"}
    if role == "matte":
        from backend.loaders.matte import REMBG_MODELS

        if spec.ref in REMBG_MODELS:
            return _rembg_identity(spec.ref)
    entry = {k: v for k, v in (("kind", spec.kind), ("ref", spec.ref), ("revision", spec.revision),
                               ("subfolder", spec.subfolder), ("filename", spec.filename)) if v}
    if spec.options:
        entry["options"] = spec.options
    try:
        resolved = registry.resolve(role)
    except ModelMissing:
        return {**entry, "missing": True}
    if spec.kind == "hub":
        entry["commit"] = hub_commit(resolved.path)
    else:
        entry["files"] = path_identity(resolved.path)
    if resolved.config is not None:
        entry["config"] = path_identity(resolved.config)
    return entry


def path_identity(path: Path) -> dict:
    """A file by its size and modification time; a folder by those of every file under it (one digest)."""
    try:
        if path.is_file():
            stat = path.stat()
            return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if not path.is_dir():
            return {"path": str(path), "missing": True}
        digest = hashlib.blake2b(digest_size=16)
        count = 0
        for root, dirs, files in os.walk(path, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                file = Path(root) / name
                stat = file.stat()  # follows links: a Hugging Face snapshot links to its blobs
                digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                count += 1
        return {"path": str(path), "count": count, "digest": digest.hexdigest()}
    except OSError as e:
        raise StageError(f"cannot read model weights at {path}: {e.strerror}; check the path and its "
                         "permissions", code="model_missing") from None


def hub_commit(path: Path) -> str:
    """The commit of a Hugging Face cache snapshot (…/snapshots/<commit>/…) a resolved path lies in."""
    parts = path.parts
    if "snapshots" in parts and parts.index("snapshots") + 1 < len(parts):
        return parts[parts.index("snapshots") + 1]
    return str(path_identity(path))  # not a cache layout (a local mirror): its files then


def _rembg_identity(name: str) -> dict:
    from backend.loaders.matte import REMBG_MODELS, rembg_model_file

    if name not in REMBG_MODELS:
        return {"rembg": name, "missing": "unknown model"}
    path, found = rembg_model_file(name)
    return {"rembg": name, **(path_identity(Path(path)) if found else {"missing": True})}


def offline_models(models: Any) -> Any:
    """The registry as the job will see it, but never downloading (identities are read at submission)."""
    if models is None:
        from backend.models import load_registry  # late: backend.models imports the stages

        models = load_registry()
    offline = getattr(models, "offline", None)
    return offline() if offline is not None else models
