"""Loading the Wan video pipelines from the models file's roles (`vace`, `animate`, or any role named by
`video.model`): a diffusers folder, a hub id (resolved to the local cache), or one single-file transformer
checkpoint with `"config"` pointing at a diffusers folder that holds the rest (VAE, T5, tokenizer).

Loaded pipelines stay warm in the registry's cache; a change of weights, dtype, device or offload rebuilds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.errors import ModelMissing, StageError

# The diffusers classes of each engine: (pipeline, transformer).
CLASSES = {"vace": ("WanVACEPipeline", "WanVACETransformer3DModel"),
           "animate": ("WanAnimatePipeline", "WanAnimateTransformer3DModel")}
DEFAULT_MODELS = {"vace": "Wan-AI/Wan2.1-VACE-1.3B-diffusers", "animate": "Wan-AI/Wan2.2-Animate-14B-Diffusers"}


def _where(registry: Any, role: str) -> tuple[Path, Path | None, tuple]:
    """(weights path, config folder for a single file, fingerprint) of a role."""
    if isinstance(registry, dict):
        if role not in registry:
            raise ModelMissing(role, f"(no {role!r} entry)", f"add a {role!r} entry to the models file "
                                                             f"(a diffusers folder such as {DEFAULT_MODELS.get(role, '')})")
        path = Path(registry[role]).expanduser()
        if not path.exists():
            raise ModelMissing(role, str(path), f"put the diffusers folder at {path}, or change {role!r} in the "
                                                f"models file to where it is")
        return path, None, (str(path), path.stat().st_mtime_ns)
    resolved = registry.resolve(role)
    return resolved.path, resolved.config, resolved.fingerprint()


def load_wan(registry: Any, engine: str, role: str, device: str, dtype, offload: str) -> Any:
    """The warm diffusers pipeline of `engine` (vace / animate) for the weights of `role`."""
    path, config, fingerprint = _where(registry, role)
    key = ("video", engine, fingerprint, str(device), str(dtype), offload)
    load = lambda: _build(engine, role, path, config, dtype)  # noqa: E731
    get_or_load = getattr(registry, "get_or_load", None)
    return load() if get_or_load is None else get_or_load(key, load, slot="video")


def _build(engine: str, role: str, path: Path, config: Path | None, dtype) -> Any:
    import diffusers

    pipeline_cls, transformer_cls = (getattr(diffusers, name) for name in CLASSES[engine])
    if path.is_file():
        if config is None:
            raise ModelMissing(role, str(path), f"add \"config\": \"<diffusers folder of the same model (VAE, text "
                                                f"encoder, tokenizer)>\" to {role!r}, e.g. a download of "
                                                f"{DEFAULT_MODELS[engine]} without its transformer weights",
                               detail="A single-file transformer needs the rest of the pipeline beside it.")
        transformer = transformer_cls.from_single_file(str(path), config=str(config), subfolder="transformer",
                                                       local_files_only=True, torch_dtype=dtype)
        pipe = pipeline_cls.from_pretrained(str(config), transformer=transformer, local_files_only=True,
                                            dtype=dtype)
    else:
        if not (path / "model_index.json").is_file():
            raise ModelMissing(role, str(path), f"point {role!r} at a diffusers folder (model_index.json inside), "
                                                f"e.g. a download of {DEFAULT_MODELS[engine]}",
                               detail="The folder is not a diffusers pipeline.")
        pipe = pipeline_cls.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    if type(pipe).__name__ != CLASSES[engine][0]:
        raise StageError(f"{role!r} holds a {type(pipe).__name__}, not a {CLASSES[engine][0]}; point it at "
                         f"{engine} weights such as {DEFAULT_MODELS[engine]}", code="model_config")
    pipe.set_progress_bar_config(disable=True)
    return pipe
