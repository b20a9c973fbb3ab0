"""OpenPose keypoints from posed armatures land where Cycles draws the joints.

Each joint gets a small sphere that follows the posed bone through a Copy Location constraint
(Blender's own evaluation, not our projection); the sphere's pixels in the object-index pass give
the joint's rendered position, which the projected keypoint must match within 1 px.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scene_fixtures import empty_scene, front_camera, render_passes

import bpy
import addon_utils  # noqa: E402  (importable once bpy is)
import bmesh  # noqa: E402
from blender_addon.scene.pose import COLOURS, KEYPOINTS, LIMBS, PoseError, draw_openpose, openpose_frame, \
    project_skeleton, resolve_bones

W, H = 240, 200

MIXAMO_BONES = {  # name: (head, tail, parent)
    "Hips": ((0, 0, 1.0), (0, 0, 1.1), None),
    "Spine": ((0, 0, 1.1), (0, 0, 1.4), "Hips"),
    "Neck": ((0, 0, 1.45), (0, 0, 1.55), "Spine"),
    "Head": ((0, 0, 1.55), (0, 0, 1.75), "Neck"),
    "LeftEye": ((0.04, -0.08, 1.65), (0.04, -0.1, 1.65), "Head"),
    "RightEye": ((-0.04, -0.08, 1.65), (-0.04, -0.1, 1.65), "Head"),
    "LeftArm": ((0.18, 0, 1.42), (0.45, 0, 1.42), "Spine"),
    "LeftForeArm": ((0.45, 0, 1.42), (0.7, 0, 1.42), "LeftArm"),
    "LeftHand": ((0.7, 0, 1.42), (0.8, 0, 1.42), "LeftForeArm"),
    "RightArm": ((-0.18, 0, 1.42), (-0.45, 0, 1.42), "Spine"),
    "RightForeArm": ((-0.45, 0, 1.42), (-0.7, 0, 1.42), "RightArm"),
    "RightHand": ((-0.7, 0, 1.42), (-0.8, 0, 1.42), "RightForeArm"),
    "LeftUpLeg": ((0.1, 0, 1.0), (0.1, 0, 0.55), "Hips"),
    "LeftLeg": ((0.1, 0, 0.55), (0.1, 0, 0.1), "LeftUpLeg"),
    "LeftFoot": ((0.1, 0, 0.1), (0.1, -0.1, 0.02), "LeftLeg"),
    "RightUpLeg": ((-0.1, 0, 1.0), (-0.1, 0, 0.55), "Hips"),
    "RightLeg": ((-0.1, 0, 0.55), (-0.1, 0, 0.1), "RightUpLeg"),
    "RightFoot": ((-0.1, 0, 0.1), (-0.1, -0.1, 0.02), "RightLeg"),
}


def mixamo_armature(scene, prefix="mixamorig:"):
    data = bpy.data.armatures.new("Mixamo")
    armature = bpy.data.objects.new("Mixamo", data)
    scene.collection.objects.link(armature)
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    for name, (head, tail, parent) in MIXAMO_BONES.items():
        bone = data.edit_bones.new(prefix + name)
        bone.head, bone.tail = head, tail
        if parent:
            bone.parent = data.edit_bones[prefix + parent]
            bone.use_connect = False
    bpy.ops.object.mode_set(mode="OBJECT")
    return armature


def rotate(armature, bone, axis, degrees):
    pose_bone = armature.pose.bones[bone]
    pose_bone.rotation_mode = "XYZ"
    setattr(pose_bone.rotation_euler, axis, math.radians(degrees))


def add_markers(scene, armature, bones):
    """A 2 cm sphere on each keypoint's bone head, numbered by keypoint (pass index = k + 1)."""
    mesh = bpy.data.meshes.new("Marker")
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=2, radius=0.02)
    bm.to_mesh(mesh)
    bm.free()
    for k, keypoint in enumerate(KEYPOINTS):
        if keypoint not in bones:
            continue
        marker = bpy.data.objects.new(f"Marker {keypoint}", mesh)
        scene.collection.objects.link(marker)
        marker.pass_index = k + 1
        follow = marker.constraints.new("COPY_LOCATION")
        follow.target, follow.subtarget = armature, bones[keypoint][0]
        follow.head_tail = 0.0 if bones[keypoint][1] == "head" else 1.0


def rendered_joints(scene, tmp_path):
    scene.view_layers[0].use_pass_object_index = True
    scene.cycles.filter_width = 0.01  # sample each pixel at its centre
    planes = render_passes(scene, tmp_path / "markers.exr")
    index = planes["Object Index.X" if "Object Index.X" in planes else "IndexOB.X"]  # 5.0 name, 4.x name
    index = np.round(index).astype(int)
    found = {}
    for k in range(len(KEYPOINTS)):
        rows, cols = np.nonzero(index == k + 1)
        if rows.size:
            found[k] = (cols.mean() + 0.5, rows.mean() + 0.5)
    return found


def scene_with_camera():
    scene = empty_scene((W, H), samples=1)
    camera = front_camera(scene, distance=3.0, height=0.9, ortho_scale=None)
    camera.data.lens = 35
    camera.location.x = 0.3  # off-axis, so x and y errors show
    camera.rotation_euler.z = math.radians(4)
    return scene, camera


def assert_projection_matches_render(scene, camera, armature, tmp_path):
    bones = resolve_bones(armature)
    add_markers(scene, armature, bones)
    points = project_skeleton(scene, camera, armature)
    rendered = rendered_joints(scene, tmp_path)
    assert len(rendered) == len(bones) >= 14
    for k, (x, y) in rendered.items():
        assert np.hypot(*(points[k] - (x, y))) < 1.0, f"{KEYPOINTS[k]}: projected {points[k]}, rendered {(x, y)}"
    return points


def test_mixamo_joints_land_on_their_rendered_pixels(tmp_path):
    scene, camera = scene_with_camera()
    armature = mixamo_armature(scene)
    armature.location = (0.1, 0.2, 0.0)
    armature.rotation_euler.z = math.radians(-15)
    rotate(armature, "mixamorig:LeftForeArm", "z", 70)
    rotate(armature, "mixamorig:RightArm", "x", -40)
    rotate(armature, "mixamorig:LeftUpLeg", "x", 30)
    rotate(armature, "mixamorig:Neck", "y", 20)

    points = assert_projection_matches_render(scene, camera, armature, tmp_path)
    assert np.isnan(points[KEYPOINTS.index("nose")]).all()  # Mixamo has no nose bone: left out
    assert points[KEYPOINTS.index("left_wrist"), 0] > points[KEYPOINTS.index("right_wrist"), 0]  # faces us


def test_rigify_metarig_joints_land_on_their_rendered_pixels(tmp_path):
    scene, camera = scene_with_camera()
    addon_utils.enable("rigify", default_set=False)
    try:
        bpy.ops.object.armature_human_metarig_add()
        armature = bpy.context.object
        assert resolve_bones(armature)["nose"] == ("nose.002", "head")
        armature.pose.bones["forearm.L"].rotation_mode = "XYZ"
        armature.pose.bones["forearm.L"].rotation_euler.x = math.radians(-60)
        armature.pose.bones["thigh.R"].rotation_mode = "XYZ"
        armature.pose.bones["thigh.R"].rotation_euler.x = math.radians(25)
        points = assert_projection_matches_render(scene, camera, armature, tmp_path)
        assert not np.isnan(points).any()  # the metarig has every OpenPose joint, face included
    finally:
        addon_utils.disable("rigify")


def test_openpose_image_has_joint_and_limb_colours(tmp_path):
    scene, camera = scene_with_camera()
    armature = mixamo_armature(scene, prefix="mixamorig1:")
    image, skeletons = openpose_frame(scene)
    assert image.shape == (H, W, 3) and len(skeletons) == 1
    points = skeletons[0]
    for k in (KEYPOINTS.index("neck"), KEYPOINTS.index("left_elbow"), KEYPOINTS.index("right_knee")):
        x, y = points[k]
        assert tuple(image[int(y), int(x)]) == COLOURS[k]
    limb = LIMBS.index((1, 2))  # neck -> right shoulder
    mid = (points[1] + points[2]) / 2
    assert np.abs(image[int(mid[1]), int(mid[0])].astype(int) - np.round(0.6 * np.array(COLOURS[limb]))).max() <= 1
    assert image.sum(axis=-1).astype(bool).mean() < 0.2  # lines on black
    assert armature.name in bpy.data.objects


def test_draw_skips_missing_joints_and_bad_rigs_are_named():
    points = np.full((18, 2), np.nan)
    points[1], points[2] = (10, 10), (30, 10)
    image = draw_openpose([points], (40, 20))
    assert image[10, 20].any() and not image[:, :5].any()
    scene = empty_scene()
    empty = bpy.data.objects.new("Bare", bpy.data.armatures.new("Bare"))
    scene.collection.objects.link(empty)
    with pytest.raises(PoseError, match="bone_map"):
        resolve_bones(empty)
    with pytest.raises(PoseError, match="accepted"):
        resolve_bones(empty, "DAZ")


def test_pose_layer_of_a_pass_take(tmp_path):
    from blender_addon.scene.passes import render_passes as render_take
    from blender_addon.scene.frames import read_frame

    scene, camera = scene_with_camera()
    armature = mixamo_armature(scene)
    rotate(armature, "mixamorig:LeftForeArm", "z", 70)
    take = render_take(tmp_path / "take", frame_start=1, frame_end=1, layers=("pose",))
    written = read_frame(take, "pose", 1)
    expected, _ = openpose_frame(scene)
    np.testing.assert_array_equal(written, expected)
    assert written.any()
