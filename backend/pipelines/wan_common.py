"""What both Wan engines share: dtype, where the weights live while they run (offload), VAE tiling, and
turning an out-of-memory failure into a message naming the settings to change."""

from __future__ import annotations

import contextlib
from typing import Any

from backend.errors import StageError

MEMORY_HELP = ("set video.offload to model (or group, then sequential for the least memory), turn on "
               "video.vae_tiling, or lower video.size or video.segment_frames")


def wan_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def place(pipe: Any, offload: str, device: str) -> list[str]:
    """Put the pipeline on `device` the way `offload` says; returns notes for the job's log."""
    if not str(device).startswith("cuda"):
        pipe.to(device)
        return [] if offload == "none" else [f"video.offload {offload!r} ignored: it only helps on a GPU"]
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "group":
        import torch
        from diffusers.hooks import apply_group_offloading

        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module):
                # Blocks stream onto the GPU one group at a time, overlapped with compute on a side stream.
                apply_group_offloading(module, onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                       offload_type="block_level", num_blocks_per_group=1, use_stream=True)
    return []


def set_vae_tiling(pipe: Any, on: bool) -> None:
    if on:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()


@contextlib.contextmanager
def memory_guard(what: str):
    """An out-of-memory error becomes a StageError that names the settings that fix it."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise StageError(f"{what} ran out of GPU memory ({str(e).splitlines()[0]}); {MEMORY_HELP}",
                         code="out_of_memory") from e
