"""Pure bpy helpers, usable headless and from operators alike (plain functions, explicit arguments).

    cards.make_card(take_dir, height=, depth_scale=, location=, camera=, frame_start=, offset=, extend=, lit=, displace=)
    cards.set_card_timing(card, frame_start=, offset=, extend=), cards.set_card_lit(card, lit), cards.face_camera(card, camera)
    passes.render_passes(take_dir, scene=, camera=, frame_start=, frame_end=, layers=, depth_format=, near=, far=)
        (or prepare_take + pass_render_settings + render_frame, one frame per timer tick)
    pose.project_skeleton(scene, camera, armature) -> 18×2 pixel coords; pose.openpose_frame(scene) -> image, skeletons
    shot.setup_final_render(scene), shot.focus_on(camera, card), shot.dolly_back(camera, ...), shot.flashing_light(scene, ...)
    frames.read_frame(take, layer, frame) -> numpy array; imagefiles: PNG/EXR bytes without OpenCV
"""
