"""`dstage models check` shows each model's licence (from its model card, else the known defaults) and size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import dstage  # noqa: E402

from backend.models import check_models, format_check  # noqa: E402


def test_licence_and_size_of_found_and_missing_models(tmp_path):
    folder = tmp_path / "vace"
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "weights.safetensors").write_bytes(b"\0" * 3000)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- video\n---\n# a card\n")
    single = tmp_path / "ink.safetensors"
    single.write_bytes(b"\0" * 500)
    config = {"models": {"vace": str(folder), "lora": {"ink": {"file": str(single)}}}}
    report = {e["role"]: e for e in check_models(config)}
    vace = report["vace"]
    assert vace["status"] == "found" and vace["licence"] == "Apache-2.0"
    assert vace["size_bytes"] == 3000 + (folder / "README.md").stat().st_size
    assert report["lora.ink"]["size_bytes"] == 500 and report["lora.ink"]["licence"] == "see the model card"
    animate = report["animate"]   # the default, not on this machine: licence known, size unknown
    assert animate["status"] == "missing" and animate["licence"] == "Apache-2.0" and animate["size_bytes"] is None
    text = format_check(list(report.values()))
    assert "[Apache-2.0, 3.0 KB]" in text.splitlines()[[e["role"] for e in report.values()].index("vace")]


def test_the_command_prints_them(tmp_path):
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": {}}))
    result = dstage("models", "check", "--models", str(models), "--json")
    assert result.returncode == 1, result.stderr   # missing models: exit status 1, the report still printed
    entries = {e["role"]: e for e in json.loads(result.stdout)}
    assert entries["vace"]["licence"] == "Apache-2.0" and entries["vace"]["model"].startswith("Wan-AI/")
