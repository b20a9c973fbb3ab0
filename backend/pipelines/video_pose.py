"""Wan-Animate's driving inputs from a take: the pose frame and the performer's face crop.

The pose frame is the take's `pose` layer (the add-on's OpenPose render of the armature) or, for plain
footage, controlnet-aux's OpenPose annotator run on the colour frame. The face crop is a square of the
footage around the face keypoints, found in the pose image by their OpenPose colours (nose, eyes, ears are
drawn as discs in fixed colours). Each frame on its own: a resumed segment gets the same crops.
"""

from __future__ import annotations

import cv2
import numpy as np

# OpenPose (COCO-18) colours of the face keypoints: nose, right eye, left eye, right ear, left ear.
FACE_COLOURS = np.array([(255, 0, 0), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)], np.int16)
COLOUR_TOLERANCE = 12
MIN_FACE_SHARE = 0.12   # of the frame's height: a crop never shrinks below this


def face_box(pose: np.ndarray) -> tuple[float, float, float] | None:
    """(centre x, centre y, side) of a square around the face keypoints drawn in `pose`, or None."""
    rgb = pose[..., :3].astype(np.int16)
    hits = np.zeros(rgb.shape[:2], bool)
    for colour in FACE_COLOURS:
        hits |= (np.abs(rgb - colour).max(axis=2) <= COLOUR_TOLERANCE)
    ys, xs = np.nonzero(hits)
    if len(xs) < 3:
        return None
    spread = max(xs.max() - xs.min(), ys.max() - ys.min())
    side = max(2.2 * spread, MIN_FACE_SHARE * pose.shape[0])
    return float(xs.mean()), float(ys.mean()), float(side)


def fallback_box(pose: np.ndarray) -> tuple[float, float, float]:
    """No face keypoints: the top of whatever the pose shows, else the top middle of the frame."""
    height, width = pose.shape[:2]
    side = MIN_FACE_SHARE * height * 1.5
    ys, xs = np.nonzero(pose[..., :3].max(axis=2) > 20)
    if len(xs):
        return float(np.median(xs)), float(ys.min() + side / 2), side
    return width / 2.0, side / 2, side


def face_crop(color: np.ndarray, pose: np.ndarray, size: int) -> np.ndarray:
    """A `size`-square crop of the footage around the performer's face (edges padded by replication)."""
    pose = cv2.resize(pose, color.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    cx, cy, side = face_box(pose) or fallback_box(pose)
    half = side / 2.0
    # an affine map from the square to the output: sub-pixel exact, border pixels replicated
    scale = size / side
    matrix = np.float32([[scale, 0, -(cx - half) * scale], [0, scale, -(cy - half) * scale]])
    return cv2.warpAffine(color, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
