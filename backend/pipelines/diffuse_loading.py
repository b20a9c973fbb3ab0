"""Loading diffusion models from the registry: checkpoints (hub id, folder, single file), VAE, ControlNets, LoRAs.

Every loader gets a local path from the registry and `local_files_only=True`, so nothing reaches the
network. Loaded models live in the registry's warm cache: a job with the same checkpoint, VAE, dtype and
device reuses the pipeline the last one built; any change rebuilds it.

backend.models is imported inside functions: it imports the stages package, which imports this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and diffusers load with the first job, not with the server (seconds of start-up)
    import torch

    from backend.models import ModelRegistry, ResolvedModel

FAMILIES = ("sd1", "sd2", "sdxl")


@dataclass
class LoadedBase:
    """A txt2img pipeline whose components every other pipeline of the job shares (`from_pipe`)."""

    pipe: object
    family: str
    scheduler_config: dict                              # the checkpoint's own, before any sampler override
    loras: tuple = ()                                   # (name, fingerprint) of the adapters loaded now
    derived: dict = field(default_factory=dict)         # (class, controlnet roles) -> pipeline


def torch_dtype(name: str, device: str) -> torch.dtype:
    import torch

    if name == "auto":
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


# ---- which family ------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def family_of_folder(folder: Path) -> str:
    """sd1 / sd2 / sdxl from a diffusers folder's model_index.json and unet config."""
    index = _read_json(folder / "model_index.json")
    if "XL" in index.get("_class_name", "") or "text_encoder_2" in index:
        return "sdxl"
    unet = _read_json(folder / "unet" / "config.json")
    return "sd2" if unet.get("cross_attention_dim") == 1024 else "sd1"


def family_of_file(path: Path) -> str | None:
    """sd1 / sd2 / sdxl from the tensor names of a single-file checkpoint (safetensors only: no unpickling)."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"
    if any(k.startswith("cond_stage_model.transformer.") or k.startswith("model.diffusion_model.") for k in keys):
        return "sd1"
    return None


def checkpoint_family(registry: ModelRegistry, ckpt: ResolvedModel) -> str:
    from backend import models
    declared = ckpt.options.get("family")
    if declared is not None:
        if declared not in FAMILIES:
            raise models.ModelMissing(ckpt.role, ckpt.path_or_id, f"set \"family\" to one of {', '.join(FAMILIES)}",
                               detail=f"Unknown family {declared!r}.")
        return declared
    if ckpt.kind == "single_file":
        if ckpt.config is not None:
            return family_of_folder(ckpt.config)
        return family_of_file(ckpt.path) or "sd1"
    return family_of_folder(ckpt.path)


def single_file_config(registry: ModelRegistry, ckpt: ResolvedModel, family: str) -> Path:
    """The local diffusers config folder a single-file checkpoint loads with (never fetched silently)."""
    from backend import models

    if ckpt.config is not None:
        return ckpt.config
    repo = models.FAMILY_CONFIGS[family]
    how = (f"run `huggingface-cli download {repo} --include \"*.json\" \"*.txt\"` (configs and tokenizer, a few kB), "
           f"or add \"config\": \"<local diffusers folder>\" to {ckpt.role!r}")
    return registry.hub_path(ckpt.role, repo, how)


# ---- checkpoint + VAE --------------------------------------------------------------------------------
def pipeline_classes(family: str) -> dict[tuple[bool, bool], type]:
    """(img2img, controlnet) -> diffusers pipeline class for a family."""
    import diffusers as d

    if family == "sdxl":
        return {
            (False, False): d.StableDiffusionXLPipeline,
            (True, False): d.StableDiffusionXLImg2ImgPipeline,
            (False, True): d.StableDiffusionXLControlNetPipeline,
            (True, True): d.StableDiffusionXLControlNetImg2ImgPipeline,
        }
    return {
        (False, False): d.StableDiffusionPipeline,
        (True, False): d.StableDiffusionImg2ImgPipeline,
        (False, True): d.StableDiffusionControlNetPipeline,
        (True, True): d.StableDiffusionControlNetImg2ImgPipeline,
    }


def load_base(registry: ModelRegistry, checkpoint_role: str, vae_role: str | None,
              device: str, dtype: torch.dtype, offload: str) -> LoadedBase:
    """The warm base pipeline for this checkpoint + VAE + dtype + device + offload mode."""
    ckpt = registry.resolve(checkpoint_role)
    vae = registry.resolve(vae_role) if vae_role else None
    key = ("diffuse.base", ckpt.fingerprint(), vae.fingerprint() if vae else None, str(device), str(dtype), offload)
    return registry.get_or_load(key, lambda: _build_base(registry, ckpt, vae, device, dtype, offload))


def _build_base(registry, ckpt: ResolvedModel, vae: ResolvedModel | None, device, dtype, offload) -> LoadedBase:
    family = checkpoint_family(registry, ckpt)
    cls = pipeline_classes(family)[(False, False)]
    # The safety checker is not part of a film pipeline; SDXL has none to begin with.
    extra = {} if family == "sdxl" else {"safety_checker": None, "feature_extractor": None,
                                        "requires_safety_checker": False}
    if vae is not None:
        extra["vae"] = load_vae(registry, vae, ckpt, family, dtype)
    if ckpt.kind == "single_file":
        config = single_file_config(registry, ckpt, family)
        pipe = cls.from_single_file(str(ckpt.path), config=str(config), local_files_only=True,
                                    torch_dtype=dtype, **extra)
    else:
        pipe = cls.from_pretrained(str(ckpt.path), local_files_only=True, torch_dtype=dtype, **extra)
    if offload == "none":
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedBase(pipe=pipe, family=family, scheduler_config=dict(pipe.scheduler.config))


def load_vae(registry, vae: ResolvedModel, ckpt: ResolvedModel, family: str, dtype):
    from diffusers import AutoencoderKL

    if vae.kind == "single_file":
        config = vae.config or (ckpt.config if ckpt.kind == "single_file" else None)
        config = config or (ckpt.path if ckpt.kind != "single_file" else single_file_config(registry, ckpt, family))
        return AutoencoderKL.from_single_file(str(vae.path), config=str(config), subfolder="vae",
                                              local_files_only=True, torch_dtype=dtype)
    subfolder = vae.subfolder or ("vae" if (vae.path / "vae" / "config.json").is_file() else None)
    return AutoencoderKL.from_pretrained(str(vae.path), subfolder=subfolder, local_files_only=True, torch_dtype=dtype)


# ---- ControlNets ---------------------------------------------------------------------------------------
def load_controlnet(registry: ModelRegistry, role: str, device: str, dtype: torch.dtype, offload: str):
    cn = registry.resolve(role)
    key = (f"diffuse.{role}", cn.fingerprint(), str(device), str(dtype), offload)

    def load():
        from diffusers import ControlNetModel

        if cn.kind == "single_file":
            config = cn.config or _controlnet_config(registry, role)
            model = ControlNetModel.from_single_file(str(cn.path), config=str(config), local_files_only=True,
                                                     torch_dtype=dtype)
        else:
            model = ControlNetModel.from_pretrained(str(cn.path), subfolder=cn.subfolder, local_files_only=True,
                                                    torch_dtype=dtype)
        return model.to(device) if offload == "none" else model

    return registry.get_or_load(key, load)


def _controlnet_config(registry: ModelRegistry, role: str) -> Path:
    from backend import models

    repo = models.DEFAULT_MODELS.get(role, "lllyasviel/control_v11p_sd15_canny")
    how = f"run `huggingface-cli download {repo} config.json`, or add \"config\": \"<folder with config.json>\" to {role!r}"
    return registry.hub_path(role, repo, how)


# ---- LoRAs ---------------------------------------------------------------------------------------------
def apply_loras(registry: ModelRegistry, base: LoadedBase, loras: list[tuple[str, float]]) -> None:
    """Make exactly these LoRAs active at these strengths. Loads or unloads only when the set changes."""
    pipe = base.pipe
    resolved = [(name, registry.resolve(lora_role(name)), strength) for name, strength in loras]
    wanted = tuple((name, r.fingerprint()) for name, r, _ in resolved)
    if wanted != base.loras:
        if base.loras:
            pipe.unload_lora_weights()
            base.loras = ()
        for name, r, _ in resolved:
            folder, weight_name = (r.path.parent, r.path.name) if r.is_file else (r.path, r.options.get("weight_name"))
            pipe.load_lora_weights(str(folder), weight_name=weight_name, adapter_name=_adapter(name),
                                   local_files_only=True)
        base.loras = wanted
    if resolved:
        pipe.set_adapters([_adapter(n) for n, _, _ in resolved], adapter_weights=[s for _, _, s in resolved])


def lora_role(name: str) -> str:
    return name if name.startswith("lora.") else f"lora.{name}"


def _adapter(name: str) -> str:
    return name.removeprefix("lora.").replace(".", "_")
