"""compat.py on the running Blender: each helper reaches the real setting it stands for (the suite runs
on bpy 4.5 and 5.3, so both spellings are exercised)."""

from __future__ import annotations

import bpy
from scene_fixtures import empty_scene

from blender_addon import compat


def test_the_mix_shader_factor_is_its_first_input_and_drives_the_mix():
    empty_scene()
    material = bpy.data.materials.new("m")
    nodes = compat.shader_nodes(material).nodes
    mix = nodes.new("ShaderNodeMixShader")
    factor = compat.mix_factor(mix)
    assert factor == mix.inputs[0] and factor.type == "VALUE"
    factor.default_value = 0.25
    assert mix.inputs[0].default_value == 0.25


def test_eevee_and_media_type_take_the_running_blenders_spelling():
    scene = empty_scene()
    scene.render.engine = compat.engine_id("BLENDER_EEVEE")
    assert scene.render.engine == compat.EEVEE and compat.engine_name(scene.render.engine) == "BLENDER_EEVEE"
    settings = scene.render.image_settings
    compat.set_media_type(settings, "MULTI_LAYER_IMAGE")
    settings.file_format = "OPEN_EXR_MULTILAYER"
    compat.set_media_type(settings, "IMAGE")
    settings.file_format = "PNG"
    assert settings.file_format == "PNG"
    assert compat.HAS_MEDIA_TYPE == (bpy.app.version >= (5, 0, 0))


def test_a_new_compositor_is_the_one_the_scene_uses_and_its_result_socket_is_the_output():
    scene = empty_scene()
    tree, result = compat.new_compositor(scene, "Test Compositor")
    assert compat.scene_compositor(scene) == tree
    assert result.node.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")
    assert result.node.id_data == tree
    scale, dilate, blur = (tree.nodes.new(n) for n in
                           ("CompositorNodeScale", "CompositorNodeDilateErode", "CompositorNodeBlur"))
    compat.scale_to_render_size(scale)
    compat.dilate_by_distance(dilate, 3)
    compat.gaussian_blur(blur, 4.0)
    if "Size" in dilate.inputs:
        assert dilate.inputs["Size"].default_value == 3
    else:
        assert dilate.distance == 3


def test_oidn_probe_matches_this_builds_denoiser_list():
    # the official bpy wheels are built with OpenImageDenoise
    assert compat.oidn_available()
