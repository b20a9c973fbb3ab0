"""Parameters of the video engines (Wan VACE, Wan-Animate), validated at the edge.

They ride in the propagate stage's parameters as `video.*` (`--set engine=vace --set video.steps=30`).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.params import ParamError, param

ENGINES = ("keyframes", "vace", "animate")
VIDEO_ENGINES = ("vace", "animate")
CONTROL_LAYERS = ("depth", "pose", "lineart")
TEMPORAL_STRIDE = 4   # the Wan VAE packs 4 frames into one latent frame: clips are 4k + 1 frames long


@dataclass
class VideoParams:
    model: str = param("", help="models-file role of the weights; empty: the engine's own role (vace / animate)")
    prompt: str = param("", help="what the character looks like (the style)")
    negative_prompt: str = param("", help="what to avoid")
    seed: int = param(0, min=0, max=2**32 - 1)
    steps: int = param(30, min=1, max=100)
    guidance: float = param(5.0, min=0.0, max=20.0, help="classifier-free guidance (1 or less: off, twice as fast)")
    size: int = param(832, min=16, max=2048, help="long side of the generated video (a multiple of 16); "
                                                 "frames are resized back to the footage's size")
    segment_frames: int = param(81, min=5, max=257, help="frames per segment (4k + 1; Wan was trained on 81)")
    overlap: int = param(5, min=1, max=64, help="frames a segment shares with the previous one (its conditioning; 4k + 1)")
    controls: list[str] = param(list(CONTROL_LAYERS), choices=list(CONTROL_LAYERS),
                                help="vace: the take's layers composed into the control video "
                                     "(footage in grey when it has none of them)")
    conditioning_scale: float = param(1.0, min=0.0, max=3.0, help="vace: strength of the control video")
    pin_keyframes: bool = param(True, help="vace: the stylised keyframes are kept frames (they come back as given)")
    reference: str = param("keyframe", choices=["keyframe", "side", "none"],
                           help="reference image: the first stylised keyframe, the side input `reference` "
                                "(`--side reference=IMAGE`), or none (vace only)")
    mode: str = param("animate", choices=["animate", "replace"],
                      help="animate: the character performs the footage on a flat background; "
                           "replace: the character takes the performer's place in the footage (needs alpha)")
    face_size: int = param(512, min=16, max=1024, help="animate: side of the face crops (Wan-Animate: 512)")
    dtype: str = param("auto", choices=["auto", "bf16", "fp16", "fp32"], help="auto: bf16 on GPU, fp32 on CPU")
    offload: str = param("none", choices=["none", "model", "group", "sequential"],
                         help="GPU memory: model (whole models on and off), group (blocks, streamed), "
                              "sequential (least memory, slowest)")
    vae_tiling: bool = param(False, help="decode the video in tiles (720p and up on smaller GPUs)")

    def validate(self) -> None:
        if self.segment_frames % TEMPORAL_STRIDE != 1:
            below = self.segment_frames - (self.segment_frames - 1) % TEMPORAL_STRIDE
            raise ParamError("video.segment_frames", f"{self.segment_frames} is not 4k + 1 (the Wan VAE packs 4 "
                                                     f"frames per latent); use {below} or {below + 4}")
        if self.size % 16:
            raise ParamError("video.size", f"{self.size} is not a multiple of 16; use {self.size // 16 * 16 or 16}")
        if self.overlap % TEMPORAL_STRIDE != 1:
            below = self.overlap - (self.overlap - 1) % TEMPORAL_STRIDE
            raise ParamError("video.overlap", f"{self.overlap} is not 4k + 1 (segments must start on a latent frame "
                                              f"so that shared frames share their noise); use {below} or {below + 4}")
        if 2 * self.overlap > self.segment_frames - 1:
            raise ParamError("video.overlap", f"{self.overlap} frames is more than half of segment_frames "
                                              f"{self.segment_frames}; use at most {(self.segment_frames - 1) // 2}")
        if len(set(self.controls)) != len(self.controls):
            raise ParamError("video.controls", "a layer is listed twice")

    def role(self, engine: str) -> str:
        return self.model or engine

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) generated for a source of this size: long side `size`, both multiples of 16."""
        scale = self.size / max(width, height)
        return (max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16))
