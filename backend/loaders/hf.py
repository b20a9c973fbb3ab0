"""Loading a transformers model and its image processor from a folder or a cached hub id, offline by default."""

from __future__ import annotations

from typing import Any, Callable

from backend.loaders.missing import ModelMissing, hub_hint, looks_like_path, require_local


def from_pretrained(load: Callable[..., Any], source: str, *, role: str, local_files_only: bool, **kwargs) -> Any:
    """`load(source, local_files_only=..., **kwargs)` with a ModelMissing that names the model on failure."""
    is_path = looks_like_path(source)
    if is_path:
        source = str(require_local(source, role, "give the folder a model saved with save_pretrained"))
    elif local_files_only:
        source = cached_snapshot(source, role)
    try:
        return load(source, local_files_only=local_files_only, **kwargs)
    except OSError as e:  # transformers' way of saying "no such files here or in the cache"
        if is_path:
            hint = f"check the folder: it needs config.json and the weights ({e})"
        else:
            hint = hub_hint(source)
        raise ModelMissing(source, role, hint) from e


def cached_snapshot(repo_id: str, role: str) -> str:
    """The local folder of a hub id already in the Hugging Face cache, found without any network access.

    transformers 5.x still sends requests (for adapter_config.json) when given a hub id with
    local_files_only=True, retrying for half a minute offline; a cached folder path sends none.
    """
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception as e:  # LocalEntryNotFoundError, or a malformed id (HFValidationError)
        raise ModelMissing(repo_id, role, hub_hint(repo_id)) from e


def torch_dtype_for(device: str):
    import torch

    return torch.float16 if str(device).startswith("cuda") else torch.float32
