"""Tiny diffusion models for the diffuse tests, built from configs with random weights and saved to disk.

Everything is written the way users' models are: a diffusers folder (save_pretrained) for SD 1.x and
SDXL, ControlNets, a LoRA in diffusers format, controlnet_aux annotator weights in a folder, and an
original-layout (LDM) single-file checkpoint with a config-only diffusers folder beside it. The tests load
them through the same registry and loaders as the backend does; nothing touches the network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

SEED = 0
CN_TYPES = ("depth", "canny", "softedge")


def _tokenizer():
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_encoder(projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=54,
        max_position_embeddings=77, projection_dim=32, bos_token_id=52, eos_token_id=53, pad_token_id=53,
        hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _vae():
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
        sample_size=64,
    )
    # A trained VAE's posterior is nearly deterministic; a random one's is not. Pin the log-variance low
    # so that img2img's encode (which samples) behaves like a real VAE's. And scale latents to unit
    # variance, as SD's 0.18215 does for its VAE, so that noise levels mean what they mean in SD.
    with torch.no_grad():
        vae.quant_conv.bias[4:] = -20.0
        y, x = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
        sample = torch.stack([x, y, x * y])[None]
        latents = vae.encode(sample).latent_dist.mode()
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    return vae.eval()


def _unet(xl: bool = False):
    from diffusers import UNet2DConditionModel

    common = dict(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    if xl:
        return UNet2DConditionModel(
            **common, attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80, cross_attention_dim=64,
        ).eval()
    return UNet2DConditionModel(**common, cross_attention_dim=32, attention_head_dim=8).eval()


def _scheduler(xl: bool = False):
    from diffusers import EulerDiscreteScheduler, PNDMScheduler

    kw = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    if xl:
        return EulerDiscreteScheduler(**kw, timestep_spacing="leading")
    return PNDMScheduler(**kw, skip_prk_steps=True, set_alpha_to_one=False)


def _controlnet(unet):
    from diffusers import ControlNetModel

    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 8))
    # ControlNet starts from zero convolutions (no effect); a trained one has moved away from zero.
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in cn.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return cn.eval()


def _lora(unet, folder: Path) -> tuple[Path, Path]:
    """A random LoRA on the UNet's attention, saved twice: by diffusers in its format, and in kohya's."""
    import copy

    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    rank = 4
    target = copy.deepcopy(unet)
    target.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                  target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    peft_state = get_peft_model_state_dict(target)
    layers = convert_state_dict_to_diffusers(peft_state)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers, weight_name="ink.safetensors")
    # kohya (sd-scripts) names: lora_unet_<module path with underscores>.lora_down/.lora_up/.alpha
    kohya = {}
    for key, value in peft_state.items():
        module, which = key.rsplit(".lora_", 1)
        name = "lora_unet_" + module.replace(".", "_")
        kohya[f"{name}.{'lora_down' if which.startswith('A') else 'lora_up'}.weight"] = value.contiguous()
        kohya[f"{name}.alpha"] = torch.tensor(float(rank))
    save_file(kohya, str(folder / "ink_kohya.safetensors"))
    return folder / "ink.safetensors", folder / "ink_kohya.safetensors"


# ---- diffusers layout -> original (LDM) single-file layout -------------------------------------------------
def _resnet_to_ldm(key: str) -> str:
    return (key.replace("norm1", "in_layers.0").replace("conv1", "in_layers.2").replace("norm2", "out_layers.0")
            .replace("conv2", "out_layers.3").replace("time_emb_proj", "emb_layers.1")
            .replace("conv_shortcut", "skip_connection"))


def unet_to_ldm(state: dict, layers_per_block: int = 2) -> dict:
    """Diffusers UNet tensor names as the original Stable Diffusion checkpoint names them."""
    n = layers_per_block + 1
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        name = None
        for old, new in fixed.items():
            if key.startswith(old + "."):
                name = new + key[len(old):]
        if name is None and parts[0] == "down_blocks":
            i = int(parts[1])
            if parts[2] == "resnets":
                j = int(parts[3])
                name = f"input_blocks.{n * i + j + 1}.0." + _resnet_to_ldm(".".join(parts[4:]))
            elif parts[2] == "attentions":
                j = int(parts[3])
                name = f"input_blocks.{n * i + j + 1}.1." + ".".join(parts[4:])
            elif parts[2] == "downsamplers":
                name = f"input_blocks.{n * (i + 1)}.0.op." + ".".join(parts[5:])
        elif name is None and parts[0] == "mid_block":
            j = int(parts[2])
            if parts[1] == "resnets":
                name = f"middle_block.{2 * j}." + _resnet_to_ldm(".".join(parts[3:]))
            else:
                name = "middle_block.1." + ".".join(parts[3:])
        elif name is None and parts[0] == "up_blocks":
            i = int(parts[1])
            if parts[2] == "resnets":
                name = f"output_blocks.{n * i + int(parts[3])}.0." + _resnet_to_ldm(".".join(parts[4:]))
            elif parts[2] == "attentions":
                name = f"output_blocks.{n * i + int(parts[3])}.1." + ".".join(parts[4:])
            elif parts[2] == "upsamplers":
                has_attn = any(k.startswith(f"up_blocks.{i}.attentions.") for k in state)
                name = f"output_blocks.{n * i + n - 1}.{2 if has_attn else 1}.conv." + parts[-1]
        if name is None:
            raise KeyError(f"no LDM name for UNet tensor {key}")
        out["model.diffusion_model." + name] = value
    return out


def vae_to_ldm(state: dict, num_blocks: int) -> dict:
    out = {}
    for key, value in state.items():
        name = key
        for side in ("encoder", "decoder"):
            name = name.replace(f"{side}.conv_norm_out", f"{side}.norm_out")
            name = name.replace(f"{side}.mid_block.resnets.0", f"{side}.mid.block_1")
            name = name.replace(f"{side}.mid_block.resnets.1", f"{side}.mid.block_2")
            name = name.replace(f"{side}.mid_block.attentions.0", f"{side}.mid.attn_1")
        for i in range(num_blocks):
            name = name.replace(f"encoder.down_blocks.{i}.resnets", f"encoder.down.{i}.block")
            name = name.replace(f"encoder.down_blocks.{i}.downsamplers.0", f"encoder.down.{i}.downsample")
            up = num_blocks - 1 - i
            name = name.replace(f"decoder.up_blocks.{i}.resnets", f"decoder.up.{up}.block")
            name = name.replace(f"decoder.up_blocks.{i}.upsamplers.0", f"decoder.up.{up}.upsample")
        name = name.replace("conv_shortcut", "nin_shortcut")
        if ".mid.attn_1." in name:
            name = (name.replace("group_norm", "norm").replace("to_q", "q").replace("to_k", "k")
                    .replace("to_v", "v").replace("to_out.0", "proj_out"))
            if value.ndim == 2:
                value = value[:, :, None, None]  # the original VAE's attention projections are 1x1 convs
        out["first_stage_model." + name] = value
    return out


def write_single_file(pipe, path: Path) -> None:
    """An SD 1.x pipeline saved as one original-layout .safetensors, as community checkpoints come."""
    from safetensors.torch import save_file

    state = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config.layers_per_block)
    state.update(vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels)))
    for key, value in pipe.text_encoder.state_dict().items():
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def config_only_copy(folder: Path, dest: Path) -> Path:
    """The json and tokenizer files of a diffusers folder, no weights (what `--include "*.json" "*.txt"` gets)."""
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".txt"):
            target = dest / f.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    return dest


def _annotator_weights(folder: Path) -> Path:
    from controlnet_aux.hed import ControlNetHED_Apache2

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    torch.save(ControlNetHED_Apache2().state_dict(), folder / "ControlNetHED.pth")
    return folder


def _window_random(shape, generator: torch.Generator) -> torch.Tensor:
    """Random values for a weight of `shape` as overlapping windows of one short random vector (neighbouring
    output channels shift the window by one): the network runs on varied weights, and torch.save stores only
    the short vector, so OpenPose's three fixed-size networks take 3.5 MB on disk instead of 500 MB."""
    shape = tuple(shape)
    strides, inner = [], 1
    for size in reversed(shape[1:]):
        strides.insert(0, inner)
        inner *= size
    base = torch.randn(shape[0] + inner, generator=generator) * 0.05
    return base.as_strided(shape, [1, *strides])


def openpose_weights(folder: Path) -> Path:
    """controlnet_aux's OpenPose files (body, hand, face) with random weights, in the layout its
    from_pretrained reads (body and hand keys without their first part), for pose estimation in tests."""
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(5)
    for name, model, strip in (("body_pose_model.pth", bodypose_model(), True),
                               ("hand_pose_model.pth", handpose_model(), True), ("facenet.pth", FaceNet(), False)):
        weights = {(key.split(".", 1)[1] if strip else key): _window_random(value.shape, generator)
                   for key, value in model.state_dict().items()}
        torch.save(weights, folder / name)
    return folder


def build_models(root: Path) -> dict:
    """Write every tiny model under `root`; return the models-file dict that maps roles to them."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    torch.manual_seed(SEED)
    unet = _unet()
    sd = StableDiffusionPipeline(
        vae=_vae(), text_encoder=_text_encoder(), tokenizer=_tokenizer(), unet=unet, scheduler=_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    sd.save_pretrained(root / "sd")
    controlnets = {}
    for t in CN_TYPES:
        _controlnet(unet).save_pretrained(root / f"cn_{t}")
        controlnets[f"controlnet.{t}"] = {"path": str(root / f"cn_{t}")}
    lora, lora_kohya = _lora(unet, root / "loras")
    write_single_file(sd, root / "single.safetensors")
    config_only_copy(root / "sd", root / "sd_config")

    xl_unet = _unet(xl=True)
    xl = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=_text_encoder(), text_encoder_2=_text_encoder(projection=True),
        tokenizer=_tokenizer(), tokenizer_2=_tokenizer(), unet=xl_unet, scheduler=_scheduler(xl=True),
    )
    xl.save_pretrained(root / "sdxl")
    _controlnet(xl_unet).save_pretrained(root / "cn_xl_depth")

    _vae().save_pretrained(root / "vae_override")
    annotators = _annotator_weights(root / "annotators")
    return {
        "allow_download": False,
        "models": {
            "checkpoint": {"path": str(root / "sd")},
            "checkpoint.single": {"file": str(root / "single.safetensors"), "config": str(root / "sd_config")},
            "checkpoint.xl": {"path": str(root / "sdxl")},
            **controlnets,
            "controlnet_xl.depth": {"path": str(root / "cn_xl_depth")},
            "lora": {"ink": {"file": str(lora)}, "ink_kohya": {"file": str(lora_kohya)}},
            "vae.alt": {"path": str(root / "vae_override")},
            "annotators": {"path": str(annotators)},
        },
    }


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """The models-file dict for the tiny models, built once per test session."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny_models")
    config = build_models(root)
    (root / "models.json").write_text(json.dumps(config, indent=2))
    return config


@pytest.fixture(scope="session")
def registry(tiny_models):
    from backend.models import ModelRegistry

    return ModelRegistry.from_dict(tiny_models)


@pytest.fixture(scope="session")
def diffuse(registry):
    from backend.pipelines.diffuse import DiffusePipeline

    return DiffusePipeline(registry, device="cpu")
