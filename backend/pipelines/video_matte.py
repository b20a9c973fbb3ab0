"""Video matting without a screen: a person tracked through the shot by SAM 2 video, refined to soft alpha.

The tracker runs in streaming mode (one frame at a time, its memory of earlier frames kept by the model),
prompted on the shot's first frame with a box or a point. Its outputs for frames older than the model
can look back at are dropped, so memory stays flat as the shot grows. Each tracked mask becomes a
trimap (sure subject, sure background, an unknown band along the outline) that ViTMatte turns into
soft alpha; without a matting model the tracker's own soft mask is the alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from backend.params import ParamError, param

KEEP_FRAMES = 24     # the tracker reads back at most max(num_maskmem, max_object_pointers_in_encoder) = 16 frames


@dataclass
class VideoMatteParams:
    box: list[float] = param([], help="the person on the first frame: x0, y0, x1, y1 in pixels "
                                      "(neither box nor point: found by rembg's person matte, role 'matte')")
    point: list[float] = param([], help="or a point on the person on the first frame: x, y in pixels")
    refine: str = param("vitmatte", choices=("vitmatte", "none"),
                        help="vitmatte: soft alpha from the 'matting' model on a trimap; none: the tracker's mask")
    band: int = param(6, min=1, max=64, help="width in pixels of the trimap's unknown band on each side of the outline")

    def validate(self) -> None:
        if self.box and len(self.box) != 4:
            raise ParamError("video.box", f"expected x0, y0, x1, y1, got {len(self.box)} numbers")
        if self.point and len(self.point) != 2:
            raise ParamError("video.point", f"expected x, y, got {len(self.point)} numbers")
        if self.box and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1]):
            raise ParamError("video.box", "x1 must be right of x0 and y1 below y0")


class Tracker:
    """SAM 2 video in streaming mode: `mask(rgb)` for each frame in order, prompted on the first."""

    def __init__(self, model: Any, processor: Any, params: VideoMatteParams):
        if not params.box and not params.point:
            raise ParamError("video.box", "video matting needs the person marked on the first frame: "
                                          "set video.box=x0,y0,x1,y1 or video.point=x,y (pixels)")
        import torch

        self.torch = torch
        self.model, self.processor, self.params = model, processor, params
        self.session = processor.init_video_session(inference_device=model.device, dtype=model.dtype)
        self.index = 0

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Soft mask (float32 0..1, the frame's size) of the tracked person in the next frame."""
        inputs = self.processor(images=rgb, device=self.model.device, return_tensors="pt")
        if self.index == 0:
            prompt: dict[str, Any] = {}
            if self.params.box:
                prompt["input_boxes"] = [[list(map(float, self.params.box))]]
            if self.params.point:
                prompt["input_points"] = [[[list(map(float, self.params.point))]]]
                prompt["input_labels"] = [[[1]]]
            self.processor.add_inputs_to_inference_session(
                inference_session=self.session, frame_idx=0, obj_ids=1,
                original_size=inputs.original_sizes[0], **prompt)
        with self.torch.no_grad():
            out = self.model(inference_session=self.session, frame=inputs.pixel_values[0].to(self.model.dtype))
        logits = self.processor.post_process_masks([out.pred_masks], original_sizes=inputs.original_sizes,
                                                   binarize=False)[0]
        self._forget(self.index - KEEP_FRAMES)
        self.index += 1
        return self.torch.sigmoid(logits[0, 0].float()).cpu().numpy().astype(np.float32)

    def _forget(self, before: int) -> None:
        """Drop what the tracker keeps of frames it will not look back at (the prompt frame stays)."""
        if before < 1:
            return
        frames = self.session.processed_frames
        if frames is not None and frames.get(before) is not None:
            frames[before] = None          # keep the key: the session numbers new frames by their count
        for outputs in self.session.output_dict_per_obj.values():
            outputs["non_cond_frame_outputs"].pop(before, None)


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """uint8 trimap from a soft mask: 255 sure subject, 0 sure background, 128 the band along the outline."""
    solid = (mask > 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inner = cv2.erode(solid, kernel)
    outer = cv2.dilate(solid, kernel)
    out = np.full(mask.shape, 128, np.uint8)
    out[inner > 0] = 255
    out[outer == 0] = 0
    return out


def vitmatte_alpha(model: Any, processor: Any, rgb: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """ViTMatte's alpha for one frame and its trimap; the trimap's sure regions are kept as they are."""
    import torch

    inputs = processor(images=rgb, trimaps=tri, return_tensors="pt")
    with torch.no_grad():
        alphas = model(pixel_values=inputs.pixel_values.to(model.device, model.dtype)).alphas
    h, w = tri.shape
    alpha = alphas[0, 0, :h, :w].float().cpu().numpy()   # the processor pads to a multiple of 32
    alpha = np.where(tri == 255, 1.0, np.where(tri == 0, 0.0, alpha))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)
