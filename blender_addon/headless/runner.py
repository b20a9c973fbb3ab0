"""One shot, headless, in the order the add-on's buttons go:

    footage -> scene -> backend -> engines -> matte -> depth -> stylize -> normal -> albedo -> upscale -> card
    -> render -> preview -> contact sheet

normal and albedo make the card relightable; upscale brings the card's colour (and albedo) to the height
the rendered frame needs (only when the footage is shorter than that: the --final run at 3840×2160).

Every step resumes: footage frames, takes and rendered frames already on disk are kept, and the backend
never recomputes a frame it stored. A failure raises ShotError naming the step and, when there is one, the
frame. Outputs (OUT/): frames/0001.png ..., preview.mp4, contact_sheet.png, times.txt, shot.json, blender.log, takes/.
With `final`, frames render at 3840×2160 into OUT/final/; with `still`, only that frame renders.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from backend.ipc.client import Client
from backend.ipc.take import Take
from blender_addon.headless import render
from blender_addon.headless.backend_process import BackendProcess
from blender_addon.headless.blender_log import blender_log_to
from blender_addon.headless.card_take import assemble_card_take
from blender_addon.headless.cluster_render import render_on_cluster
from blender_addon.headless.contact_sheet import contact_sheet
from blender_addon.headless.engines import Choice, choose_engines
from blender_addon.headless.errors import ShotError
from blender_addon.headless.inputs import FrameInput, footage_input, merged_input, take_input
from blender_addon.headless.movie import MovieError, encode_mp4
from blender_addon.headless.progress import Bar
from blender_addon.headless.scripts import SAMPLE_SCENES, sample_footage, sample_scene
from blender_addon.headless.stage_jobs import run_stage
from blender_addon.headless.timing import TimeTable
from blender_addon.jobs.frames import is_video

DEFAULT_SERVER = "tcp://127.0.0.1:5571"
BACKEND_STEPS = ("matte", "depth", "stylize", "normal", "albedo", "upscale")


@dataclass
class ShotConfig:
    scene: str                                   # a .blend path or a sample scene name (flash_room, garden)
    out: Path
    footage: Path | None = None                  # numbered images; None: render the sample footage
    server: str = DEFAULT_SERVER
    start_backend: bool = True                   # start a backend when none answers at `server`
    backend_python: str | None = None
    store: Path | None = None                    # the started backend's store (default OUT/store)
    device: str = "cpu"
    models: str | None = None                    # model config for a started backend
    frames: tuple[int, int] | None = None        # shot range (default: the scene's)
    size: tuple[int, int] | None = None          # render size (default: the scene's)
    samples: int | None = None                   # Cycles samples (default: the scene's)
    final: bool = False                          # render at 3840×2160
    still: int | None = None                     # render only this frame
    params: dict = field(default_factory=dict)   # {stage: {param: value}}
    engines: dict = field(default_factory=dict)  # {step: stage} to force an engine
    card_height: float = 2.6                     # metres: the footage frame's height on the card
    depth_scale: float = 0.3
    spot: str = "Card Spot"                      # the object the card stands on
    footage_frames: int = 48
    footage_size: tuple[int, int] = (270, 480)
    as_filmed: bool = False                      # the card without its normal/albedo shading (the "before")
    card_shadow: str = "BLENDER"                 # BLENDER, FILMED or BOTH: FILMED/BOTH ask the matte for its shadow
    clean_plate: Path | None = None              # an image of the empty screen: the matte keys against it
    character: Path | None = None                # the video engine's character image (stylize=animate or vace)
    cluster: str | None = None                   # Ray address: the frames render as chunks on its Blender nodes
    cluster_chunk: int = 8                       # frames per cluster task
    log: object = print


@dataclass
class ShotResult:
    out: Path
    engines: dict[str, Choice]
    times: TimeTable
    counts: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_shot(config: ShotConfig) -> ShotResult:
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    times = TimeTable()
    result = ShotResult(out, {}, times)
    log = config.log
    backend = None
    try:
        with times.step("footage") as row:
            footage = _footage(config, out, row)
        with times.step("scene") as row:
            scene, spot = _load_scene(config, len(footage.frames))
            row.note = f"{scene.name}, frames {scene.frame_start}-{scene.frame_end}"
        with times.step("backend") as row:
            backend = BackendProcess(config.server, store=config.store or out / "store", log_path=out / "backend.log",
                                     python=config.backend_python, device=config.device, models=config.models,
                                     start=config.start_backend)
            row.note = ("started here, log " + str(backend.log_path)) if backend.started_here else f"reached {config.server}"
        client = Client(config.server, timeout_s=10.0)
        try:
            steps = _wanted_steps(config, footage, scene)
            with times.step("engines") as row:
                result.engines = _engines(config, client, footage, out, steps)
                log("engines:")
                for choice in result.engines.values():
                    log("  " + choice.describe())
                    for note in choice.notes:
                        log(f"      (real engine not used: {note})")
                row.note = ", ".join(f"{c.step}={c.engine.stage if c.engine else '-'}" for c in result.engines.values())
            takes = _backend_steps(config, client, footage, out, result, steps, _upscale_factor(config, footage, scene))
        finally:
            client.close()
        with times.step("card") as row:
            card = _place_card(config, scene, spot, takes, out)
            row.note = f"{card.name} at {tuple(round(v, 2) for v in card.location)}"
        with blender_log_to(out / "blender.log"):  # Blender's line per frame; the bars stay on stderr
            _render_steps(config, scene, out, result)
    except KeyboardInterrupt:
        log(f"interrupted: what is finished stays in {out}; run the same command again to continue")
        raise
    finally:
        if backend is not None:
            backend.stop()
        if times.rows:
            (out / "times.txt").write_text(times.format() + "\n")
            log("\n" + times.format())
        _write_summary(result)
    return result


# -- steps --------------------------------------------------------------------------------------------
def _footage(config: ShotConfig, out: Path, row) -> FrameInput:
    if config.footage is not None:
        try:
            folder = _decoded(config.footage, out) if is_video(config.footage) else config.footage
            footage = footage_input(folder)
        except (OSError, ValueError) as e:
            raise ShotError("footage", str(e)) from None
        row.note = f"{len(footage.frames)} frames from {config.footage}"
        return footage
    folder = out / "footage"  # the sample footage, rendered here (frames kept)
    with blender_log_to(out / "blender.log"):
        sample_footage().render_footage(folder, frames=config.footage_frames, size=config.footage_size, mp4=False)
    row.note = f"sample figure, {config.footage_frames} frames in {folder}"
    return footage_input(folder)


def _decoded(video: Path, out: Path) -> Path:
    """Every frame of a video as PNGs under OUT/footage_video/ (kept: a re-run decodes nothing)."""
    from blender_addon.scene.video import VideoFrames, cache_folder

    frames = VideoFrames(video, cache_folder(Path(video), out / "footage_video"))
    bar = Bar("decode", len(frames.frames))
    try:
        with blender_log_to(out / "blender.log"):
            for i, _ in enumerate(frames.decode(frames.frames), 1):
                bar(i, len(frames.frames))
    finally:
        bar.close()
    return frames.cache_dir


def _load_scene(config: ShotConfig, footage_frames: int):
    """The scene and the object the card stands on."""
    if config.scene.endswith(".blend"):
        path = Path(config.scene)
        if not path.is_file():
            raise ShotError("scene", f"{path} does not exist; give a .blend or a sample scene "
                                     f"({', '.join(SAMPLE_SCENES)})")
        bpy.ops.wm.open_mainfile(filepath=str(path))
        scene = bpy.context.scene
        spot = bpy.data.objects.get(config.spot)
        if spot is None:
            raise ShotError("scene", f"{path} has no object named {config.spot!r} for the card to stand on; "
                                     "add an empty where the character stands or pass --spot NAME")
    else:
        made = sample_scene(config.scene).build(bpy.context.scene, frames=footage_frames)
        scene, spot = made["scene"], made["card_spot"]
    if scene.camera is None:
        raise ShotError("scene", f"scene {scene.name!r} has no camera; add one and make it the scene camera")
    if config.frames is not None:
        scene.frame_start, scene.frame_end = config.frames
    return scene, spot


def _target_height(config: ShotConfig, scene) -> int:
    """The rendered frame's height: what the card's texture should match."""
    if config.final:
        return render.FINAL_SIZE[1]
    return config.size[1] if config.size else scene.render.resolution_y


def _upscale_factor(config: ShotConfig, footage: FrameInput, scene) -> int:
    """1, 2 or 4: the smallest factor that brings the footage to the rendered frame's height (at most 4)."""
    need = _target_height(config, scene) / footage.size[1]
    return 1 if need <= 1 else 2 if need <= 2 else 4


def _wanted_steps(config: ShotConfig, footage: FrameInput, scene) -> tuple[str, ...]:
    if _upscale_factor(config, footage, scene) == 1 and "upscale" not in config.engines:
        return tuple(s for s in BACKEND_STEPS if s != "upscale")
    return BACKEND_STEPS


def _engines(config: ShotConfig, client: Client, footage: FrameInput, out: Path, steps=BACKEND_STEPS) -> dict[str, Choice]:
    offered = {s["name"] for s in client.request("stages", timeout_s=30).header.get("stages", [])}

    def probe(stage: str):
        try:
            run_stage(client, stage, config.params.get(stage, {}), footage, out / "probe" / stage,
                      step=f"{stage} (probe)", frames=footage.frames[:1])
        except ShotError as e:
            return e
        return None

    return choose_engines(offered, probe, steps, config.engines)


def _backend_steps(config: ShotConfig, client: Client, footage: FrameInput, out: Path, result: ShotResult,
                   steps: tuple[str, ...] = BACKEND_STEPS, upscale: int = 1) -> dict:
    """Run the backend steps in order; returns {step: Take} for the card."""
    def matte(takes, *layers):
        return take_input(takes["matte"].root, layers)

    def colour(takes):  # the card's colour: stylised when there is a stylisation, else the matte's
        return take_input(takes.get("stylize", takes["matte"]).root, ("color",))

    def normal_source(takes):
        parts = [matte(takes, "color", "alpha")]
        if "depth" in takes:
            parts.append(take_input(takes["depth"].root, ("depth",)))
        return merged_input(*parts)

    def upscale_source(takes):
        parts = [colour(takes), matte(takes, "alpha")]
        if "albedo" in takes:
            parts.append(take_input(takes["albedo"].root, ("albedo",)))
        return merged_input(*parts)

    sources = {"matte": lambda takes: footage,
               "depth": lambda takes: matte(takes, "color", "alpha"),
               "stylize": lambda takes: matte(takes, "color", "alpha"),
               "normal": normal_source,
               "albedo": lambda takes: merged_input(colour(takes), matte(takes, "alpha")),
               "upscale": upscale_source}
    takes: dict[str, Take] = {}
    for step in steps:
        choice = result.engines.get(step)
        if choice is None or choice.engine is None:
            if step == "matte":
                raise ShotError("matte", "the backend offers no matte stage; update the backend")
            result.notes.append(f"{step}: no engine; the card goes without it")
            continue
        stage = choice.engine.stage
        params = merged(expand_dotted(dict(choice.engine.params)), config.params.get(stage, {}))
        sides = None
        if step == "matte" and config.card_shadow != "BLENDER":
            params.setdefault("shadow", True)  # the filmed shadow the card lays on the floor
        if step == "matte" and config.clean_plate is not None:
            params["key"] = {**params.get("key", {}), "clean_plate": True}
            sides = {"clean_plate": _image_side(config.clean_plate, "matte", "the clean plate", "an image of the "
                                                "empty screen (same camera and light) with --clean-plate")}
        if step == "stylize" and config.character is not None:
            if params.get("engine") not in ("animate", "vace"):
                raise ShotError("stylize", "--character is for a video engine: add --engine stylize=animate (or "
                                           "stylize=vace), or leave --character out")
            params["video"] = {**params.get("video", {}), "reference": "side"}
            sides = {"reference": _image_side(config.character, "stylize", "the character image",
                                              "an image of the character with --character")}
        if step == "upscale":
            params.setdefault("layers", ["albedo"] if "albedo" in takes else [])
            if params.get("method") == "resample":
                params.setdefault("scale", upscale)
        with result.times.step(step) as row:
            bar = Bar(step, len(footage.frames))
            try:
                take, counts = run_stage(client, stage, params, sources[step](takes),
                                         out / "takes" / f"{step}-{stage}", step=step, progress=bar, sides=sides)
            finally:
                bar.close()
            takes[step] = take
            result.counts[step] = counts
            row.note = f"{stage}: {counts['fetched']} frames computed or fetched, {counts['kept']} kept"
    return takes


def _image_side(path: Path, step: str, what: str, fix: str):
    """One image as a side input: ({0: digest}, read), read once; a missing file is named with its fix."""
    from backend.ipc.digest import digest_arrays
    from blender_addon.headless.images import read_rgb8

    if not Path(path).is_file():
        raise ShotError(step, f"{what} {path} is not a file; give {fix}, or leave it out")
    arrays = {"color": read_rgb8(Path(path))}
    return {0: digest_arrays(arrays)}, lambda key: arrays


def _place_card(config: ShotConfig, scene, spot, takes: dict[str, Take], out: Path):
    from blender_addon.scene.cards import CardError, make_card

    layers = {"color": takes.get("stylize", takes["matte"]), "alpha": takes["matte"]}
    if "shadow" in takes["matte"].info.layers:
        layers["shadow"] = takes["matte"]
    for step in ("depth", "normal", "albedo"):
        if step in takes:
            layers[step] = takes[step]
    if "upscale" in takes:  # colour, alpha (and albedo) at the rendered frame's height
        layers.update({name: takes["upscale"] for name in takes["upscale"].info.layers})
    card_take = assemble_card_take(out / "takes" / "card", layers)
    try:
        card = make_card(card_take.root, height=config.card_height, depth_scale=config.depth_scale,
                         location=spot.matrix_world.translation.copy(), camera=scene.camera,
                         frame_start=scene.frame_start, name="Character Card", scene=scene,
                         relit=0.0 if config.as_filmed else 1.0, shadow=config.card_shadow)
    except CardError as e:
        raise ShotError("card", str(e)) from None
    camera = scene.camera.data
    if camera.dof.use_dof:
        camera.dof.focus_object = card  # depth of field follows the character
    return card


def _render_steps(config: ShotConfig, scene, out: Path, result: ShotResult) -> None:
    times = result.times
    size = render.FINAL_SIZE if config.final else config.size
    render.configure(scene, size, config.samples)
    label = f"{scene.render.resolution_x}x{scene.render.resolution_y}"
    if config.still is not None:
        with times.step("still") as row:
            path = out / f"still_{config.still:04d}_{label}{'_as_filmed' if config.as_filmed else ''}.png"
            if not path.is_file():
                render.render_one(scene, config.still, path, step="still")
                row.note = f"{path.name} rendered"
            else:
                row.note = f"{path.name} kept"
            result.outputs["still"] = str(path)
        return
    folder = out / ("final" if config.final else "frames")
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    with times.step("render") as row:
        if config.cluster:
            counts = render_on_cluster(config.cluster, frames, folder, out, backend_python=config.backend_python,
                                       chunk=config.cluster_chunk, log=config.log)
        else:
            bar = Bar("render", len(frames))
            try:
                counts = render.render_frames(scene, frames, folder, progress=bar)
            finally:
                bar.close()
        result.counts["render"] = counts
        row.note = f"{label}: {counts['rendered']} rendered, {counts['kept']} kept"
        result.outputs["frames"] = str(folder)
    paths = {f: render.frame_path(folder, f) for f in frames}
    with times.step("preview") as row:
        movie = out / ("final.mp4" if config.final else "preview.mp4")
        try:
            encode_mp4(folder, movie, fps=round(scene.render.fps / scene.render.fps_base))
            result.outputs["preview"] = str(movie)
            row.note = movie.name
        except MovieError as e:
            result.notes.append(f"no mp4: {e}; the frames are PNGs in {folder}")
            row.note = f"PNG only ({e})"
    with times.step("contact sheet") as row:
        sheet = contact_sheet(paths, out / ("final_contact_sheet.png" if config.final else "contact_sheet.png"))
        result.outputs["contact_sheet"] = str(sheet)
        row.note = sheet.name


def _write_summary(result: ShotResult) -> None:
    summary = {
        "engines": {step: {"stage": c.engine.stage if c.engine else None,
                           "label": c.engine.label if c.engine else None,
                           "preview": bool(c.engine and c.engine.preview), "notes": c.notes}
                    for step, c in result.engines.items()},
        "times": result.times.to_json(), "counts": result.counts, "outputs": result.outputs, "notes": result.notes,
    }
    try:
        (result.out / "shot.json").write_text(json.dumps(summary, indent=1))
    except OSError as e:
        print(f"could not write {result.out / 'shot.json'}: {e}", file=sys.stderr)


def expand_dotted(flat: dict) -> dict:
    """{"video.steps": 2} -> {"video": {"steps": 2}}."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def merged(base: dict, over: dict) -> dict:
    """`over` on top of `base`, nested dicts merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
