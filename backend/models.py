"""The model registry: which weights play which role, where they are, and a warm cache of loaded pipelines.

One JSON file (path from `--models`, else `$DSTAGE_MODELS`, else ~/.config/diffusion-stage/models.json)
maps roles to models:

    {
      "allow_download": false,
      "models": {
        "checkpoint": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "checkpoint.anime": {"file": "~/models/anything-v5.safetensors", "family": "sd1"},
        "vae": {"path": "~/models/vae-ft-mse"},
        "controlnet": {"depth": "lllyasviel/control_v11f1p_sd15_depth"},
        "lora": {"ink": {"file": "~/loras/ink.safetensors"}},
        "annotators": "lllyasviel/Annotators",
        "depth": "depth-anything/Depth-Anything-V2-Base-hf"
      }
    }

A value is a Hugging Face id ("org/name"), a local diffusers folder, or one `.safetensors`/`.ckpt`
file, written as a string or as an object with `id` / `path` / `file` plus options (`revision`,
`subfolder`, `filename` for one file inside a hub repository, `config` for a single-file checkpoint,
anything else is kept in `options`). Nested objects are flattened to dotted roles
(`controlnet.depth`, `lora.ink`). Roles the file leaves out fall back to DEFAULT_MODELS.

Nothing downloads unless the file (or the caller) says `allow_download: true`: a hub id resolves only
when it is already in the local Hugging Face cache, and every loader is handed a local path.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from backend.errors import ModelMissing, StageError

DEFAULT_CONFIG_PATH = Path("~/.config/diffusion-stage/models.json")
SINGLE_FILE_EXTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".onnx")

# What a role means when the config leaves it out. Other stages may add their own roles here.
DEFAULT_MODELS: dict[str, str] = {
    "checkpoint": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "annotators": "lllyasviel/Annotators",
    "controlnet.depth": "lllyasviel/control_v11f1p_sd15_depth",
    "controlnet.normal": "lllyasviel/control_v11p_sd15_normalbae",
    "controlnet.lineart": "lllyasviel/control_v11p_sd15_lineart",
    "controlnet.softedge": "lllyasviel/control_v11p_sd15_softedge",
    "controlnet.openpose": "lllyasviel/control_v11p_sd15_openpose",
    "controlnet.mlsd": "lllyasviel/control_v11p_sd15_mlsd",
    "controlnet.segmentation": "lllyasviel/control_v11p_sd15_seg",
    "controlnet.canny": "lllyasviel/control_v11p_sd15_canny",
    "controlnet.scribble": "lllyasviel/control_v11p_sd15_scribble",
    "controlnet_xl.depth": "diffusers/controlnet-depth-sdxl-1.0",
    "controlnet_xl.canny": "diffusers/controlnet-canny-sdxl-1.0",
    "depth": "depth-anything/Depth-Anything-V2-Base-hf",
    "normal": "prs-eth/marigold-normals-v1-1",
    "albedo": "prs-eth/marigold-iid-appearance-v1-1",
    "upscaler": "caidas/swin2SR-classical-sr-x2-64",
    "vace": "Wan-AI/Wan2.1-VACE-1.3B-diffusers",        # engine=vace (14B: Wan-AI/Wan2.1-VACE-14B-diffusers)
    "animate": "Wan-AI/Wan2.2-Animate-14B-Diffusers",   # engine=animate
    "matte": "u2net_human_seg",  # a rembg model name: rembg keeps its file in REMBG_HOME
    "tracker": "facebook/sam2.1-hiera-tiny",                 # matte method=video: SAM 2 video
    "matting": "hustvl/vitmatte-small-composition-1k",       # matte method=video: trimap -> soft alpha
}

# Diffusers configs (json + tokenizer files only) that let a single-file checkpoint load offline.
FAMILY_CONFIGS = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}


class ModelConfigError(StageError):
    """The models file itself is wrong (bad JSON, unknown entry form)."""

    def __init__(self, message: str):
        super().__init__(message, code="model_config")


@dataclass(frozen=True)
class ModelSpec:
    """One role's entry, as written in the config (before looking for the weights)."""

    role: str
    kind: str                      # "hub" | "folder" | "single_file"
    ref: str                       # hub id, or the path as written (~ expanded)
    revision: str | None = None
    subfolder: str | None = None
    filename: str | None = None    # one file inside a hub repository
    config: str | None = None      # diffusers config (folder or hub id) for a single-file checkpoint
    options: dict = field(default_factory=dict, hash=False, compare=False)
    configured: bool = True        # False when the role fell back to DEFAULT_MODELS

    def how_to_get(self) -> str:
        if self.kind == "hub":
            parts = ["huggingface-cli", "download", self.ref]
            if self.filename:
                parts.append(self.filename)
            if self.revision:
                parts += ["--revision", self.revision]
            return (
                f"run `{' '.join(parts)}` on a machine with network access (same HF cache), "
                f"or set \"allow_download\": true in the models file, or point {self.role!r} at a local copy"
            )
        what = "a diffusers folder (model_index.json or config.json inside)" if self.kind == "folder" else "the file"
        return f"put {what} at {self.ref}, or change {self.role!r} in the models file to where it is"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a role's weights are on disk. `path` is always local: loaders never see a hub id."""

    role: str
    kind: str                      # "hub" | "folder" | "single_file"
    path_or_id: str                # what the config says (hub id or path)
    path: Path                     # local folder or file to load from
    config: Path | None = None     # local diffusers config folder for a single-file checkpoint
    subfolder: str | None = None
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_file(self) -> bool:
        return self.path.is_file()

    def fingerprint(self) -> tuple:
        """Changes when the weights change on disk, so the warm cache rebuilds."""
        target = self.path / self.subfolder if self.subfolder and self.path.is_dir() else self.path
        try:
            stat = target.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None
        return (self.role, self.kind, str(self.path), self.subfolder, str(self.config), stamp)


def _looks_like_path(text: str) -> bool:
    if os.path.exists(os.path.expanduser(text)):
        return True
    return (
        text.startswith(("/", "~", ".", "\\")) or (len(text) > 1 and text[1] == ":")
        or text.lower().endswith(SINGLE_FILE_EXTS) or text.count("/") != 1
    )


def parse_entry(role: str, value: Any, configured: bool = True) -> ModelSpec:
    """Read one config value (string or object) into a ModelSpec."""
    if isinstance(value, str):
        value = {"path": value} if _looks_like_path(value) else {"id": value}
    if not isinstance(value, dict):
        raise ModelConfigError(
            f"models entry {role!r} must be a hub id, a path, or an object with id/path/file; got {value!r}"
        )
    known = ("id", "path", "file", "revision", "subfolder", "filename", "config")
    given = [k for k in ("id", "path", "file") if value.get(k)]
    if len(given) != 1:
        raise ModelConfigError(
            f"models entry {role!r} needs exactly one of \"id\" (Hugging Face id), \"path\" (local folder or file) "
            f"or \"file\" (one .safetensors/.ckpt file); got {sorted(value)}"
        )
    options = {k: v for k, v in value.items() if k not in known}
    common = dict(
        revision=value.get("revision"), subfolder=value.get("subfolder"), filename=value.get("filename"),
        config=_expand(value["config"]) if value.get("config") else None, options=options, configured=configured,
    )
    if "id" in given:
        return ModelSpec(role, "hub", value["id"], **common)
    ref = _expand(value[given[0]])
    kind = "single_file" if given[0] == "file" or ref.lower().endswith(SINGLE_FILE_EXTS) else "folder"
    return ModelSpec(role, kind, ref, **common)


def _expand(text: str) -> str:
    if text.count("/") == 1 and not text.startswith((".", "/", "~")) and not os.path.exists(text):
        return text  # a hub id (for "config")
    return str(Path(os.path.expandvars(text)).expanduser())


def _flatten(models: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in models.items():
        role = f"{prefix}{key}"
        entry_keys = ("id", "path", "file")
        if isinstance(value, dict) and not any(k in value for k in entry_keys):
            out.update(_flatten(value, prefix=f"{role}."))
        else:
            out[role] = value
    return out


class ModelRegistry:
    """Resolve roles to local weights and keep loaded models warm between jobs."""

    def __init__(self, specs: dict[str, ModelSpec], *, allow_download: bool = False,
                 cache_dir: str | None = None, source: str = "(in memory)", max_warm: int = 8):
        self.specs = specs
        self.allow_download = allow_download
        self.cache_dir = cache_dir
        self.source = source
        self.max_warm = max_warm
        self._warm: OrderedDict[str, tuple[Any, Any]] = OrderedDict()   # slot -> (key, object)
        self._lock = threading.RLock()

    # ---- building -------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, *, allow_download: bool | None = None, source: str = "(in memory)") -> "ModelRegistry":
        if not isinstance(data, dict):
            raise ModelConfigError(f"{source}: the models file must hold a JSON object")
        unknown = sorted(set(data) - {"models", "allow_download", "cache_dir"})
        if unknown:
            raise ModelConfigError(f"{source}: unknown key {unknown[0]!r}; accepted: allow_download, cache_dir, models")
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise ModelConfigError(f"{source}: \"models\" must be an object mapping roles to models")
        specs = {role: parse_entry(role, value) for role, value in _flatten(models).items() if value}
        download = bool(data.get("allow_download", False)) if allow_download is None else allow_download
        return cls(specs, allow_download=download, cache_dir=data.get("cache_dir"), source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None, *, allow_download: bool | None = None) -> "ModelRegistry":
        """Read the models file; a missing file at the default location means "all defaults"."""
        explicit = path is not None or bool(os.environ.get("DSTAGE_MODELS"))
        path = Path(path or os.environ.get("DSTAGE_MODELS") or DEFAULT_CONFIG_PATH).expanduser()
        if not path.is_file():
            if explicit:
                raise ModelConfigError(
                    f"models file {path} does not exist; create it (see backend/models.py for the format) "
                    "or unset DSTAGE_MODELS / drop --models to use the defaults"
                )
            return cls({}, allow_download=bool(allow_download), source=f"{path} (absent: defaults)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ModelConfigError(f"{path} is not valid JSON: {e}") from None
        return cls.from_dict(data, allow_download=allow_download, source=str(path))

    def offline(self) -> "ModelRegistry":
        """The same roles, resolved only from what is on this machine (no download), without the warm cache."""
        return ModelRegistry(self.specs, allow_download=False, cache_dir=self.cache_dir, source=self.source)

    # ---- looking up -----------------------------------------------------------------------------------
    def spec(self, role: str) -> ModelSpec:
        if role in self.specs:
            return self.specs[role]
        if role in DEFAULT_MODELS:
            return parse_entry(role, DEFAULT_MODELS[role], configured=False)
        raise ModelMissing(
            role, "(not configured)",
            f"add \"{role}\": \"<hub id, folder or .safetensors file>\" under \"models\" in {self.source}",
            detail="This role has no default.",
        )

    def has(self, role: str) -> bool:
        return role in self.specs

    def roles(self) -> list[str]:
        return sorted(set(self.specs) | set(DEFAULT_MODELS))

    def resolve(self, role: str) -> ResolvedModel:
        """Find a role's weights on disk (or download them when allowed); ModelMissing otherwise."""
        spec = self.spec(role)
        path = self._locate(spec)
        config = None
        if spec.kind == "single_file" and spec.config:
            config = self._locate_config(spec)
        return ResolvedModel(role, spec.kind, spec.ref, path, config, spec.subfolder, dict(spec.options))

    def _locate(self, spec: ModelSpec) -> Path:
        if spec.kind != "hub":
            path = Path(spec.ref)
            if spec.kind == "single_file" and not path.is_file():
                raise ModelMissing(spec.role, spec.ref, spec.how_to_get(), detail="The file does not exist.")
            if spec.kind == "folder" and not path.exists():
                raise ModelMissing(spec.role, spec.ref, spec.how_to_get(), detail="The folder does not exist.")
            return path
        return self._hub_path(spec.role, spec.ref, spec.revision, spec.filename, spec.how_to_get())

    def _locate_config(self, spec: ModelSpec) -> Path:
        ref = spec.config
        if Path(ref).is_dir():
            return Path(ref)
        if _looks_like_path(ref):
            raise ModelMissing(
                spec.role, ref, f"put a diffusers config folder (model_index.json, */config.json, tokenizer files) at {ref}",
                detail="The single-file checkpoint's config folder does not exist.",
            )
        how = (f"run `huggingface-cli download {ref} --include \"*.json\" \"*.txt\"` (configs and tokenizer only, "
               f"a few kB), or set \"config\" of {spec.role!r} to a local diffusers folder")
        return self._hub_path(spec.role, ref, None, None, how)

    def hub_path(self, role: str, repo_id: str, how: str, filename: str | None = None) -> Path:
        """A hub repository (or one file of it) from the local cache, for loaders that need an extra config."""
        return self._hub_path(role, repo_id, None, filename, how)

    def _hub_path(self, role: str, repo_id: str, revision: str | None, filename: str | None, how: str) -> Path:
        from huggingface_hub import hf_hub_download, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        kwargs = dict(repo_id=repo_id, revision=revision, cache_dir=self.cache_dir)
        try:
            if filename:
                return Path(hf_hub_download(filename=filename, local_files_only=True, **kwargs))
            return Path(snapshot_download(local_files_only=True, **kwargs))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            if not self.allow_download:
                raise ModelMissing(
                    role, repo_id + (f" ({filename})" if filename else ""), how,
                    detail="It is not in the local Hugging Face cache and downloads are off.",
                ) from None
        try:
            if filename:
                return Path(hf_hub_download(filename=filename, **kwargs))
            return Path(snapshot_download(**kwargs))
        except Exception as e:  # network, auth, unknown repo: all end the same way for the artist
            raise ModelMissing(role, repo_id, how, detail=f"Download failed: {e}.") from None

    # ---- warm cache -----------------------------------------------------------------------------------
    def get_or_load(self, key: Any, loader: Callable[[], Any], *, slot: str | None = None) -> Any:
        """The object `loader()` builds for `key`, built once and kept warm.

        Each slot (default: key[0] for a tuple key, else the key) holds one object: asking a slot for a new
        key (another checkpoint, another dtype) drops the old object before building the new one, so a model
        change rebuilds and an unchanged model set reuses. At most `max_warm` slots stay warm (LRU).
        """
        slot = slot if slot is not None else (key[0] if isinstance(key, tuple) and key else key)
        slot = str(slot)
        with self._lock:
            held = self._warm.get(slot)
            if held is not None and held[0] == key:
                self._warm.move_to_end(slot)
                return held[1]
            if held is not None:
                del self._warm[slot]
                _release(held[1])
            value = loader()
            self._warm[slot] = (key, value)
            while len(self._warm) > self.max_warm:
                _, (_, old) = self._warm.popitem(last=False)
                _release(old)
            return value

    def warm_slots(self) -> dict[str, Any]:
        with self._lock:
            return {slot: key for slot, (key, _) in self._warm.items()}

    def clear(self) -> None:
        with self._lock:
            for _, value in self._warm.values():
                _release(value)
            self._warm.clear()


def _release(obj: Any) -> None:
    """Let the GPU memory of a dropped model go now rather than at the next collection."""
    del obj
    try:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def load_registry(models_arg: str | None = None, *, allow_download: bool | None = None) -> ModelRegistry:
    """The registry the CLI and server use: `--models` beats $DSTAGE_MODELS beats the default path."""
    return ModelRegistry.from_file(models_arg, allow_download=allow_download)


def check_models(config: "ModelRegistry | dict | str | os.PathLike | None" = None) -> list[dict]:
    """For every role: found (where) or missing (which id/file and how to get it). Never downloads."""
    if isinstance(config, ModelRegistry):
        registry = config
    elif isinstance(config, dict):
        registry = ModelRegistry.from_dict(config)
    else:
        registry = ModelRegistry.from_file(config)
    offline = registry.offline()
    report = []
    for role in registry.roles():
        spec = offline.spec(role)
        entry = {"role": role, "kind": spec.kind, "model": spec.ref, "configured": spec.configured}
        if role == "matte" and _check_rembg(entry):
            _add_info(entry)
            report.append(entry)
            continue
        try:
            resolved = offline.resolve(role)
        except ModelMissing as e:
            entry.update(status="missing", how=e.how, message=str(e))
        else:
            entry.update(status="found", path=str(resolved.path))
            if resolved.config is not None:
                entry["config"] = str(resolved.config)
        _add_info(entry)
        report.append(entry)
    return report


def _add_info(entry: dict) -> None:
    """Licence and size (backend/model_info.py) of a role's model."""
    from backend.model_info import licence, size_on_disk

    entry["licence"] = licence(entry["model"], entry.get("path"))
    entry["size_bytes"] = size_on_disk(entry.get("path")) if entry["status"] == "found" else None


def _check_rembg(entry: dict) -> bool:
    """A rembg model name is not a path nor a hub id: rembg keeps it in its own folder. True if handled."""
    from backend.loaders.matte import REMBG_MODELS, rembg_model_file

    if entry["model"] not in REMBG_MODELS:
        return False
    path, found = rembg_model_file(entry["model"])
    entry["kind"] = "rembg"
    if found:
        entry.update(status="found", path=path)
    else:
        entry.update(status="missing", how=f"run `rembg d {entry['model']}` on a machine with network and copy "
                                            f"the file to {path} (or set REMBG_HOME)",
                     message=f"rembg model {entry['model']} is not at {path}")
    return True


def format_check(report: list[dict]) -> str:
    """The text `dstage models check` prints: one line per role, then how to get each missing one."""
    from backend.model_info import human_size

    lines = []
    for e in report:
        where = e.get("path") if e["status"] == "found" else e["model"]
        default = "" if e["configured"] else " (default)"
        info = f"  [{e['licence']}, {human_size(e.get('size_bytes'))}]" if "licence" in e else ""
        lines.append(f"{e['status']:8} {e['role']:28} {where}{default}{info}")
    for e in report:
        if e["status"] == "missing":
            lines.append(f"  {e['role']}: {e['how']}")
    return "\n".join(lines)
