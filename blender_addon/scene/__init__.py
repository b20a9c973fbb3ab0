"""Pure bpy helpers, usable headless and from operators alike (plain functions, explicit arguments).

cards       make_card(take_dir, height=, depth_scale=, location=, camera=, frame_start=, offset=,
            extend=, lit=, displace=, shadow=); set_card_timing, set_card_lit, set_card_shadow, face_camera,
            scene_cards
card_shadow the filmed shadow (a take's `shadow` layer) on the floor under a card: a camera-projected decal
passes      render_passes(take_dir, scene=, camera=, frame_start=, frame_end=, layers=, depth_format=);
            or prepare_take + pass_render_settings + render_frame, one frame per timer tick
pose        project_skeleton(scene, camera, armature) -> 18×2 pixels; openpose_frame(scene)
shot        setup_final_render, focus_on(camera, card), dolly_back(camera, ...), flashing_light(scene, ...)
composite   build_stylize_compositor(scene, take_dir, objects, grow=, feather=, blend=, factor=)
frames      read_frame(take, layer, frame) -> numpy array
imagefiles  PNG and EXR bytes without OpenCV
"""
