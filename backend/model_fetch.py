"""`dstage models fetch`: download the models a config names, where the config allows downloads.

The plan comes first, one line per role: already here (where), to download (hub id, revision, file; or a
rembg model), or not downloadable (a local file or folder that is missing: only the artist can put it
there). Downloads show their own progress bars (huggingface_hub's, rembg's) and land where the jobs look:
the Hugging Face cache (or the config's cache_dir) and rembg's model folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.errors import ModelMissing
from backend.models import ModelRegistry


@dataclass
class FetchItem:
    role: str
    action: str          # "here" | "download" | "manual"
    what: str            # the hub id (and file, revision), the rembg model, or the local path
    detail: str = ""     # where it is, or how to get it

    def line(self) -> str:
        label = {"here": "here", "download": "download", "manual": "missing"}[self.action]
        return f"{label:9} {self.role:28} {self.what}{'  ' + self.detail if self.detail else ''}"


def fetch_plan(registry: ModelRegistry, roles: list[str] | None = None) -> list[FetchItem]:
    """What fetching would do for each role (default: every role the config names). Never downloads."""
    offline = registry.offline()
    plan = []
    for role in roles or sorted(registry.specs):
        spec = offline.spec(role)
        rembg = _rembg_item(role, spec.ref)
        if rembg is not None:
            plan.append(rembg)
            continue
        what = spec.ref + (f" {spec.filename}" if spec.filename else "") + (f" @ {spec.revision}" if spec.revision else "")
        try:
            plan.append(FetchItem(role, "here", what, str(offline.resolve(role).path)))
        except ModelMissing as e:
            action = "download" if spec.kind == "hub" else "manual"
            plan.append(FetchItem(role, action, what, "" if action == "download" else e.how))
    return plan


def fetch(registry: ModelRegistry, plan: list[FetchItem]) -> list[tuple[FetchItem, str]]:
    """Download every "download" item; returns (item, error message) for those that failed."""
    failures = []
    for item in plan:
        if item.action != "download":
            continue
        try:
            if item.what.startswith("rembg "):
                _fetch_rembg(item.what.removeprefix("rembg "))
            else:
                spec = registry.spec(item.role)
                _fetch_hub(spec.ref, spec.revision, spec.filename, registry.cache_dir)
        except Exception as e:  # network, auth, unknown repository: reported per role, the others go on
            failures.append((item, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"))
    return failures


def _fetch_hub(repo_id: str, revision: str | None, filename: str | None, cache_dir: str | None) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    if filename:
        hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, cache_dir=cache_dir)
    else:
        snapshot_download(repo_id=repo_id, revision=revision, cache_dir=cache_dir)


def _rembg_item(role: str, ref: str) -> FetchItem | None:
    from backend.loaders.matte import REMBG_MODELS, rembg_model_file

    if role != "matte" or ref not in REMBG_MODELS:
        return None
    path, found = rembg_model_file(ref)
    return FetchItem(role, "here" if found else "download", f"rembg {ref}", path if found else f"to {path}")


def _fetch_rembg(name: str) -> None:
    from rembg.sessions import sessions

    sessions[name].download_models()
