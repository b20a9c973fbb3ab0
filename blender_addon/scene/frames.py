"""Take frames back as numpy arrays inside Blender, in the values the take means: uint8 RGB / grey for png8,
metres for depth, float32 for EXR.

Blender's own image loader reads them (any PNG; any EXR compression, as the backend writes ZIP). The one
exception is the add-on's own uncompressed EXR (render passes it wrote itself, read again to upload them):
the small reader of backend/ipc/imagefiles.py takes those about 10-30 times faster than Blender's loader,
which decodes to RGBA float and copies through `pixels` (bench/take_read.py), on Blender's main thread."""

from __future__ import annotations

import bpy
import numpy as np

from backend.ipc.take import Take

from backend.ipc.imagefiles import ImageFileError, read_exr


def read_frame(take: Take, layer: str, frame: int) -> np.ndarray:
    """One frame of one layer, top row first: H×W×3 uint8 for colour layers, H×W uint8 for grey
    ones (alpha, line art), H×W float32 metres for png16 depth with near/far, H×W float32 for EXR."""
    path = take.path(layer, frame)
    if not path.is_file():
        raise ImageFileError(f"{path} is missing: frame {frame} of layer {layer!r} has not been written")
    spec = take.info.layers[layer]
    if spec.format == "exr":
        try:
            planes = read_exr(path)  # the add-on's own uncompressed files: the fast path
        except ImageFileError:  # compressed (the backend's ZIP, other tools): Blender decodes it
            pixels = _load(path)  # one channel (Y, depth) comes back grey: R = G = B
            grey = np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
            return pixels[..., 0].copy() if grey else pixels[..., :3].copy()
        return next(iter(planes.values())) if len(planes) == 1 else np.stack([planes[k] for k in sorted(planes)], -1)
    pixels = _load(path)
    if spec.format == "png16":
        unit = pixels[..., 0]
        if spec.near is not None and spec.far is not None:
            return (spec.near + unit * (spec.far - spec.near)).astype(np.float32)
        return np.round(unit * 65535).astype(np.uint16)
    values = np.round(pixels * 255).astype(np.uint8)
    grey = np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(values[..., 0], values[..., 2])
    return values[..., 0] if grey and layer in ("alpha", "lineart", "depth") else values[..., :3]


def _load(path) -> np.ndarray:
    """H×W×4 float32 pixels exactly as stored (no colour transform), top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        if width * height == 0:  # Blender's loader logs the reason and gives an empty image
            raise ImageFileError(f"{path} is not an image Blender can read (damaged or cut short); "
                                 "re-run the take's stage to write it again")
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        return pixels.reshape(height, width, 4)[::-1].copy()
    finally:
        bpy.data.images.remove(image)
