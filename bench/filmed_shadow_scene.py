"""Renders for bench/filmed_shadow.py (run in .venv-blender-5.3 with the repository on PYTHONPATH).

    python bench/filmed_shadow_scene.py set OUT WIDTH HEIGHT FRAMES     the filmed set and its truth
    python bench/filmed_shadow_scene.py cards OUT WIDTH HEIGHT FRAMES   cards of OUT/take in the grey set

The set is bench/matte_scene.py's ordinary shot: a figure on a green cove, lit by a key light from the side.
`set` renders the footage (OUT/footage/NNNN.png), the empty green cove (OUT/clean_plate.png), the same figure
on a grey cove (OUT/truth/: the shadow it really casts) and the grey cove alone (OUT/plate/). `cards` removes
the figure, greys the cove and stands a card where the figure's frame was (the plane y = 0, the camera's view
of it filling the frame): OUT/take with Blender's shadow (OUT/card_BLENDER/) and with the filmed one
(OUT/card_FILMED/), and OUT/take_plate (keyed with the clean plate) with the filmed one (OUT/card_FILMED_plate/).
OUT/set.json gives the image row where the floor meets the wall (the floor is below it); OUT/card_seconds.json
the seconds a frame takes with Blender's shadow and with the filmed one (best of 3, taking turns).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

HERE = Path(__file__).resolve().parent
GREY = (0.45, 0.45, 0.45, 1.0)
SAMPLES = 24


def matte_scene():
    spec = importlib.util.spec_from_file_location("matte_scene", HERE / "matte_scene.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grey_screen(screen) -> None:
    for obj in screen:
        obj.data.materials[0].node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = GREY


def render_to(scene, path: Path) -> None:
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "16"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def set_up(width: int, height: int, frames: int):
    ms = matte_scene()
    screen, figure = ms.build("ordinary")
    ms.animate(figure, "ordinary", frames)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.cycles.samples = SAMPLES
    return scene, screen, figure


def render_set(out: Path, width: int, height: int, frames: int) -> None:
    scene, screen, figure = set_up(width, height, frames)
    junction = world_to_camera_view(scene, scene.camera, Vector((0.0, 3.0, 0.0)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "set.json").write_text(json.dumps({"floor_from_row": int((1 - junction.y) * height) + 2}))
    for f in range(1, frames + 1):
        scene.frame_set(f)
        render_to(scene, out / "footage" / f"{f:04d}.png")
    for part in [figure, *figure.children]:
        part.hide_render = True
    scene.frame_set(1)
    render_to(scene, out / "clean_plate.png")  # the empty green cove, shot with the same camera and light
    for part in [figure, *figure.children]:
        part.hide_render = False
    grey_screen(screen)
    for f in range(1, frames + 1):
        scene.frame_set(f)
        render_to(scene, out / "truth" / f"{f:04d}.png")
    for part in [figure, *figure.children]:
        part.hide_render = True
    for f in range(1, frames + 1):
        scene.frame_set(f)
        render_to(scene, out / "plate" / f"{f:04d}.png")


def frame_on_plane(scene, y: float = 0.0):
    """Where the camera's view crosses the plane at depth y: (x centre, bottom z, width, height) in metres."""
    camera = scene.camera
    origin = camera.matrix_world.translation
    corners = []
    for corner in camera.data.view_frame(scene=scene):
        direction = camera.matrix_world.to_3x3() @ corner
        corners.append(origin + direction * ((y - origin.y) / direction.y))
    xs, zs = [c.x for c in corners], [c.z for c in corners]
    return (min(xs) + max(xs)) / 2, min(zs), max(xs) - min(xs), max(zs) - min(zs)


def render_cards(out: Path, width: int, height: int, frames: int) -> None:
    from blender_addon.scene.card_shadow import set_floor
    from blender_addon.scene.cards import make_card

    scene, screen, figure = set_up(width, height, frames)
    for part in [figure, *figure.children]:
        bpy.data.objects.remove(part)
    grey_screen(screen)
    x, bottom, _, frame_height = frame_on_plane(scene)
    for take, mode in (("take", "BLENDER"), ("take", "FILMED"), ("take_plate", "FILMED")):
        card = make_card(out / take, height=frame_height, location=(x, 0.0, bottom), stand="FRAME",
                         contact=False, displace="NONE", shadow=mode, name=f"Card {mode}")
        set_floor(card, 0.0)  # the card stands on its frame's bottom edge, below the floor
        for f in range(1, frames + 1):
            scene.frame_set(f)
            render_to(scene, out / f"card_{mode}{take.removeprefix('take')}" / f"{f:04d}.png")
        for child in card.children:
            bpy.data.objects.remove(child)
        bpy.data.objects.remove(card)
    (out / "card_seconds.json").write_text(json.dumps(render_seconds(out, scene, x, bottom, frame_height)))


def render_seconds(out: Path, scene, x: float, bottom: float, frame_height: float, rounds: int = 3) -> dict:
    """Seconds to render frame 1 with each card, taking turns (the best of `rounds`: a shared machine's load
    only ever adds time)."""
    from blender_addon.scene.card_shadow import set_floor
    from blender_addon.scene.cards import make_card, set_card_rendered

    cards = {}
    for mode in ("BLENDER", "FILMED"):
        cards[mode] = make_card(out / "take", height=frame_height, location=(x, 0.0, bottom), stand="FRAME",
                                contact=False, displace="NONE", shadow=mode, name=f"Timed {mode}")
        set_floor(cards[mode], 0.0)
    scene.frame_set(1)
    best = {mode: float("inf") for mode in cards}
    for _ in range(rounds):
        for mode in cards:
            for other, card in cards.items():
                set_card_rendered(card, other == mode)
            start = time.perf_counter()
            render_to(scene, out / "timing.png")
            best[mode] = min(best[mode], time.perf_counter() - start)
    return best


if __name__ == "__main__":
    what, out_dir, width, height, frames = sys.argv[-5:]
    {"set": render_set, "cards": render_cards}[what](Path(out_dir), int(width), int(height), int(frames))
