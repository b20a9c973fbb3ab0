"""The demo's relighting picture: as filmed, relit, and their amplified difference, read back from the PNG."""

import numpy as np

from blender_addon.headless.images import read_pixels, write_png
from sample_scenes.demo import DIFFERENCE_GAIN, before_after


def test_the_difference_panel_is_dark_where_equal_and_bright_where_relighting_changed(tmp_path):
    before = np.full((32, 64, 3), 100, np.uint8)
    after = before.copy()
    after[8:16, 24:40] += 10  # a patch in the kept middle half brightened by 10 levels
    write_png(tmp_path / "before.png", before)
    write_png(tmp_path / "after.png", after)

    mean, p99 = before_after(tmp_path / "before.png", tmp_path / "after.png", tmp_path / "pair.png")

    image = np.round(read_pixels(tmp_path / "pair.png")[..., :3] * 255)
    assert image.shape == (32, 3 * 32 + 2 * 8, 3)  # three middle halves and two gaps
    difference = image[:, 2 * 32 + 16:]
    assert difference[8:16, 8:24].min() >= 10 * DIFFERENCE_GAIN - 1  # the changed patch, amplified
    assert difference[:8].max() == 0 and difference[16:].max() == 0  # unchanged rows stay black
    assert np.allclose(image[8:16, 8:24], 100) and np.allclose(image[8:16, 32 + 8 + 8:32 + 8 + 24], 110)
    assert abs(mean - 10 * 128 / (32 * 32)) < 0.2 and p99 >= 9.5


def test_stills_of_different_sizes_are_refused_with_the_fix(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((16, 16, 3), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((16, 32, 3), np.uint8))
    try:
        before_after(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "pair.png")
    except ValueError as e:
        assert "same --size" in str(e)
    else:
        raise AssertionError("stills of different sizes were put side by side")
