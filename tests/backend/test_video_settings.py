"""The video engines' settings: sizes Wan takes, segment rules, and out-of-memory turned into advice."""

from __future__ import annotations

import pytest
import torch

from backend.errors import StageError
from backend.params import ParamError, parse_params
from backend.pipelines.video_params import VideoParams
from backend.pipelines.wan_common import memory_guard, wan_dtype


def test_frames_are_generated_at_multiples_of_16_with_the_footage_aspect():
    video = VideoParams()
    assert video.frame_size(1920, 1080) == (832, 464)
    assert video.frame_size(1080, 1920) == (464, 832)
    assert parse_params(VideoParams, {"size": 1280}).frame_size(1280, 720) == (1280, 720)


@pytest.mark.parametrize("values, words", [
    ({"segment_frames": 80}, ["video.segment_frames", "4k + 1", "77 or 81"]),
    ({"overlap": 4}, ["video.overlap", "4k + 1", "1 or 5"]),
    ({"segment_frames": 9, "overlap": 5}, ["video.overlap", "more than half"]),
    ({"size": 500}, ["video.size", "multiple of 16", "496"]),
    ({"offload": "disk"}, ["offload", "none", "group", "sequential"]),
])
def test_bad_settings_name_the_field_and_what_it_takes(values, words):
    with pytest.raises(ParamError) as err:
        parse_params(VideoParams, values)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_running_out_of_memory_names_the_settings_that_fix_it():
    with pytest.raises(StageError) as err:
        with memory_guard("wan vace"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    assert err.value.code == "out_of_memory"
    for setting in ("video.offload", "video.vae_tiling", "video.size", "Tried to allocate 20.00 GiB"):
        assert setting in str(err.value)


def test_bf16_on_a_gpu_and_fp32_on_the_cpu_unless_asked():
    assert wan_dtype("auto", "cuda:0") == torch.bfloat16
    assert wan_dtype("auto", "cpu") == torch.float32
    assert wan_dtype("fp16", "cpu") == torch.float16
