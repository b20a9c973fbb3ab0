"""OpenPose skeletons from armatures: the 18 COCO keypoints projected through a camera, and the
standard OpenPose colour image (coloured limbs and joints on black) that ControlNet's openpose
model reads.

Bone names are looked up through a map per rig convention (Rigify metarig or generated rig,
Mixamo with any "mixamorig…:" prefix); a keypoint whose bone the rig lacks is left out (NaN),
as OpenPose itself leaves out what it cannot see.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view

KEYPOINTS = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

# OpenPose's COCO-18 limbs (keypoint index pairs) and its colour for each keypoint and limb
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

# keypoint -> (bone, "head" | "tail"); the person's right is the rig's .R / Right
RIGIFY = {
    "nose": ("nose.002", "head"),  # the metarig's nose chain reaches its tip here
    "neck": ("spine.004", "head"),
    "right_shoulder": ("upper_arm.R", "head"), "right_elbow": ("forearm.R", "head"), "right_wrist": ("hand.R", "head"),
    "left_shoulder": ("upper_arm.L", "head"), "left_elbow": ("forearm.L", "head"), "left_wrist": ("hand.L", "head"),
    "right_hip": ("thigh.R", "head"), "right_knee": ("shin.R", "head"), "right_ankle": ("foot.R", "head"),
    "left_hip": ("thigh.L", "head"), "left_knee": ("shin.L", "head"), "left_ankle": ("foot.L", "head"),
    "right_eye": ("eye.R", "head"), "left_eye": ("eye.L", "head"),
    "right_ear": ("ear.R", "head"), "left_ear": ("ear.L", "head"),
}  # fmt: skip
MIXAMO = {
    "nose": ("Nose", "head"),  # not in Mixamo's standard skeleton; some exports add it
    "neck": ("Neck", "head"),
    "right_shoulder": ("RightArm", "head"), "right_elbow": ("RightForeArm", "head"),
    "right_wrist": ("RightHand", "head"),
    "left_shoulder": ("LeftArm", "head"), "left_elbow": ("LeftForeArm", "head"),
    "left_wrist": ("LeftHand", "head"),
    "right_hip": ("RightUpLeg", "head"), "right_knee": ("RightLeg", "head"), "right_ankle": ("RightFoot", "head"),
    "left_hip": ("LeftUpLeg", "head"), "left_knee": ("LeftLeg", "head"), "left_ankle": ("LeftFoot", "head"),
    "right_eye": ("RightEye", "head"), "left_eye": ("LeftEye", "head"),
    "right_ear": ("RightEar", "head"), "left_ear": ("LeftEar", "head"),
}  # fmt: skip
BONE_MAPS = {"RIGIFY": RIGIFY, "MIXAMO": MIXAMO}
RIGIFY_PREFIXES = ("ORG-", "DEF-", "")  # generated rig (ORG/DEF bones follow the controls) or metarig


class PoseError(ValueError):
    """An armature or bone map that gives no skeleton; the message says what to change."""


def resolve_bones(armature: bpy.types.Object, bone_map: dict | str | None = None) -> dict[str, tuple[str, str]]:
    """Map each keypoint to a bone of this armature that exists: {keypoint: (bone name, head|tail)}.

    bone_map: "RIGIFY", "MIXAMO", a custom {keypoint: (bone, head|tail)} dict, or None to pick the
    convention that finds the most bones.
    """
    if armature is None or armature.type != "ARMATURE":
        raise PoseError(f"{getattr(armature, 'name', armature)!r} is not an armature object")
    names = set(armature.data.bones.keys())
    if isinstance(bone_map, dict):
        candidates = [{k: (bone, end) for k, (bone, end) in bone_map.items() if bone in names}]
    elif bone_map in (None, "RIGIFY", "MIXAMO"):
        kinds = [bone_map] if bone_map else list(BONE_MAPS)
        candidates = [_resolve_named(BONE_MAPS[kind], kind, names) for kind in kinds]
    else:
        raise PoseError(f"bone_map is {bone_map!r}; accepted: RIGIFY, MIXAMO, a dict, or None to detect it")
    best = max(candidates, key=len)
    if len(best) < 2:
        raise PoseError(
            f"armature {armature.name!r} has none of the Rigify or Mixamo bones OpenPose needs "
            "(e.g. upper_arm.L / mixamorig:LeftArm); pass bone_map={keypoint: (bone, 'head')}"
        )
    return best


def _resolve_named(table: dict, kind: str, names: set[str]) -> dict:
    if kind == "RIGIFY":
        prefixes = RIGIFY_PREFIXES
    else:  # Mixamo bones carry an export prefix such as "mixamorig:" or "mixamorig1:"
        prefixes = sorted({n[: -len("Hips")] for n in names if n.endswith("Hips")}, key=len) or [""]
    found = {}
    for keypoint, (bone, end) in table.items():
        for prefix in prefixes:
            if prefix + bone in names:
                found[keypoint] = (prefix + bone, end)
                break
    return found


def project_skeleton(
    scene: bpy.types.Scene,
    camera: bpy.types.Object,
    armature: bpy.types.Object,
    bone_map: dict | str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The 18 keypoints as pixel coordinates (x right, y down, pixel centres at +0.5) of the
    rendered image; NaN where the rig lacks the bone or the point is behind the camera."""
    bones = resolve_bones(armature, bone_map)
    width, height = size or render_size(scene)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = armature.evaluated_get(depsgraph)
    points = np.full((len(KEYPOINTS), 2), np.nan, np.float64)
    for i, keypoint in enumerate(KEYPOINTS):
        if keypoint not in bones:
            continue
        bone_name, end = bones[keypoint]
        pose_bone = evaluated.pose.bones[bone_name]
        world = evaluated.matrix_world @ (pose_bone.head if end == "head" else pose_bone.tail)
        ndc = world_to_camera_view(scene, camera.evaluated_get(depsgraph), world)
        if ndc.z <= 0:
            continue
        points[i] = (ndc.x * width, (1.0 - ndc.y) * height)
    return points


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    scale = scene.render.resolution_percentage / 100
    return round(scene.render.resolution_x * scale), round(scene.render.resolution_y * scale)


def draw_openpose(skeletons: list[np.ndarray], size: tuple[int, int], *, stick_width: float = 4.0,
                  joint_radius: float = 4.0) -> np.ndarray:
    """The OpenPose colour image (H×W×3 uint8) of one or more skeletons from `project_skeleton`:
    limbs blended at 60% in their colours, joints as full-colour discs on top."""
    width, height = size
    canvas = np.zeros((height, width, 3), np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # pixel centres
    for points in skeletons:
        for limb, (a, b) in enumerate(LIMBS):
            if np.isnan(points[a]).any() or np.isnan(points[b]).any():
                continue
            inside = _near_segment(xs, ys, points[a], points[b], stick_width)
            canvas[inside] = 0.4 * canvas[inside] + 0.6 * np.asarray(COLOURS[limb], np.float32)
        for joint, point in enumerate(points):
            if np.isnan(point).any():
                continue
            inside = (xs - point[0]) ** 2 + (ys - point[1]) ** 2 <= joint_radius**2
            canvas[inside] = COLOURS[joint]
    return np.round(canvas).astype(np.uint8)


def _near_segment(xs, ys, a, b, radius) -> np.ndarray:
    """Pixels whose centre lies within `radius` of segment ab (a capsule)."""
    ab = np.asarray(b, np.float32) - np.asarray(a, np.float32)
    length2 = float(ab @ ab) or 1e-12
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / length2, 0.0, 1.0)
    dx, dy = xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1])
    return dx * dx + dy * dy <= radius * radius


def scene_armatures(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """Armatures that render in this scene and carry a recognisable skeleton."""
    found = []
    for obj in scene.objects:
        if obj.type != "ARMATURE" or obj.hide_render:
            continue
        try:
            resolve_bones(obj)
        except PoseError:
            continue
        found.append(obj)
    return found


def openpose_frame(scene: bpy.types.Scene, camera: bpy.types.Object | None = None,
                   armatures: list | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The pose image of the current frame for every armature (default: all recognisable ones)
    and each armature's keypoints in pixels."""
    camera = camera or scene.camera
    if camera is None:
        raise PoseError("the scene has no camera; set scene.camera or pass camera=")
    size = render_size(scene)
    skeletons = [project_skeleton(scene, camera, arm, size=size) for arm in (armatures or scene_armatures(scene))]
    return draw_openpose(skeletons, size), skeletons
