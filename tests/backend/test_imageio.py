"""Take layers survive encoding exactly (or to their stated precision) in the backend's environment."""

import numpy as np
import pytest

from backend.imageio import ImageError, decode_layer, encode_layer, read_image
from backend.ipc.take import Layer


def test_exr_depth_round_trips_bit_exact(tmp_path):
    depth = (np.random.default_rng(0).random((9, 13)) * 50).astype(np.float32)
    data = encode_layer(Layer("exr"), depth)
    assert np.array_equal(decode_layer(Layer("exr"), data), depth)
    (tmp_path / "d.exr").write_bytes(data)
    assert np.array_equal(read_image(tmp_path / "d.exr"), depth)


def test_png16_depth_keeps_its_range_to_one_step():
    layer = Layer("png16", near=2.0, far=12.0)
    depth = np.linspace(2.0, 12.0, 200, dtype=np.float32).reshape(10, 20)
    back = decode_layer(layer, encode_layer(layer, depth))
    assert np.abs(back - depth).max() <= (12.0 - 2.0) / 65535 + 1e-5


def test_png8_colour_is_lossless_and_stays_rgb():
    color = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    assert np.array_equal(decode_layer(Layer("png8"), encode_layer(Layer("png8"), color)), color)


@pytest.mark.parametrize("shape", [(7, 11), (7, 11, 3), (7, 11, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_take_pngs_decode_to_the_very_pixels_in_libpng_and_pillow(shape, dtype):
    """The take's PNG writer (row filter "up", ISA-L's deflate) against two independent readers: grey, RGB and RGBA,
    8 and 16 bit; random pixels, so rows differ by every amount and the filter wraps around."""
    import io

    import cv2
    from PIL import Image

    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(2).integers(0, top + 1, shape, dtype=dtype)
    pixels[0] = top  # a row of the largest value above rows of any other: differences wrap modulo 256
    layer = Layer("png16" if dtype == np.uint16 else "png8")
    data = encode_layer(layer, pixels if dtype == np.uint8 else pixels.astype(np.float32) / top)
    read = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if read.ndim == 3:
        read = cv2.cvtColor(read, cv2.COLOR_BGR2RGB if shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    assert read.dtype == dtype and np.array_equal(read, pixels)
    if dtype == np.uint8:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)


def test_a_file_that_is_not_an_exr_is_named(tmp_path):
    (tmp_path / "bad.exr").write_bytes(b"not an exr")
    with pytest.raises(ImageError, match="bad.exr could not be read as OpenEXR"):
        read_image(tmp_path / "bad.exr")


def test_exr_of_any_compression_and_the_add_ons_own_files_read_through_openexr(tmp_path):
    """The backend reads what other tools write (PIZ, half floats) and what the add-on writes (its own
    uncompressed files, backend/ipc/imagefiles.py), through the OpenEXR bindings."""
    import OpenEXR

    from backend.ipc.imagefiles import exr_bytes as addon_exr_bytes

    depth = (np.random.default_rng(2).random((12, 20)) * 30).astype(np.float32)
    half = OpenEXR.File({"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage},
                        {"Z": depth.astype(np.float16)})
    half.write(str(tmp_path / "piz.exr"))
    assert np.array_equal(read_image(tmp_path / "piz.exr"), depth.astype(np.float16).astype(np.float32))
    assert np.array_equal(decode_layer(Layer("exr"), addon_exr_bytes({"Y": depth})), depth)
    ours = encode_layer(Layer("exr"), depth)
    assert len(ours) < len(addon_exr_bytes({"Y": depth}))  # the take's EXR files are compressed (ZIP)
