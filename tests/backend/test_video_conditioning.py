"""Each segment is conditioned on the previous segment's last frames (both engines): change those frames
and the next segment's own frames (past the cross-faded ones) change too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_stage_fixtures import make_context  # noqa: E402
from test_video_animate import TINY as ANIMATE, character, performer  # noqa: E402
from test_video_vace import TINY as VACE, footage  # noqa: E402
from video_fixtures import build_tiny_animate, build_tiny_vace  # noqa: E402

from backend.params import parse_params  # noqa: E402
from backend.stages.base import get_stage  # noqa: E402

COUNT = 21   # segments start at 0 and 8 (13 frames, 5 shared)


@pytest.mark.parametrize("engine", ["vace", "animate"])
def test_the_previous_segments_last_frames_condition_the_next(engine, tmp_path):
    build = build_tiny_vace if engine == "vace" else build_tiny_animate
    models = {engine: str(build(tmp_path / engine))}
    frames = footage(COUNT) if engine == "vace" else performer(COUNT)
    video = {**VACE, "pin_keyframes": False, "reference": "none"} if engine == "vace" else ANIMATE
    stage = get_stage("propagate")
    params = parse_params(stage.Params, {"engine": engine, "video": video})

    def run(scratch: Path, todo=None, tamper=False) -> dict[int, np.ndarray]:
        ctx = make_context(frames, scratch, models=models, todo=todo)
        image = character()
        ctx.sides, ctx.read_side = {"reference": [0]}, lambda name, key: {"color": image.copy()}
        out = {}
        for frame, arrays in stage.run(params, ctx):
            out[frame] = arrays["color"]
            if tamper and len(out) == 8:   # the first segment is written: its tail is in scratch
                tail = ctx.load_scratch(f"{engine}_tail_00000")["tail"]
                ctx.save_scratch(f"{engine}_tail_00000", {"tail": 255 - tail})
                return out
        return out

    whole = run(tmp_path / "whole")
    stopped = run(tmp_path / "tampered", tamper=True)
    resumed = run(tmp_path / "tampered", todo=[f for f in frames if f not in stopped])
    own = [f for f in resumed if f >= 9 + VACE["overlap"]]   # segment 2's frames past the cross-fade
    assert own
    assert all(np.array_equal(stopped[f], whole[f]) for f in stopped)
    changed = [f for f in own if not np.array_equal(resumed[f], whole[f])]
    assert changed, f"{engine}: the next segment ignores the previous one's last frames"
