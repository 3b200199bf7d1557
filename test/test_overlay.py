"""Drawing helpers of the demo animation: geometry against the worlds' renderer, and layout."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_ros.envs import make_env
from grasp_ros.viz import overlay


def test_world_positions_land_on_the_rendered_dot() -> None:
    env = make_env("wall", image_size=64)
    state = np.array([13.3, 47.8, 30.0])
    camera = overlay.upscale(env.render_states(state[None])[0], 256)
    redness = (camera[..., 0].astype(float) - camera[..., 1]) ** 2
    rows, cols = np.indices(redness.shape)
    centroid = np.array([(cols * redness).sum(), (rows * redness).sum()]) / redness.sum()
    np.testing.assert_allclose(
        overlay.to_pixels(state[None], env.world_size, 256)[0], centroid, atol=0.1
    )


def test_to_pixels_puts_world_edges_at_pixel_edges() -> None:
    px = overlay.to_pixels(np.array([[0.0, 0.0, 0.0], [64.0, 32.0, 0.0]]), 64.0, 256)
    np.testing.assert_allclose(px, [[-0.5, -0.5], [255.5, 127.5]])
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        overlay.to_pixels(np.zeros(3), 64.0, 256)


def test_time_colors_run_dark_to_bright() -> None:
    colors = overlay.time_colors(10)
    assert colors.shape == (10, 3) and colors.dtype == np.uint8
    luminance = colors @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luminance) > 0)
    assert overlay.time_colors(0).shape == (0, 3)


def test_drawing_marks_the_given_pixels_and_skips_non_finite_points() -> None:
    img = np.full((64, 64, 3), 255, dtype=np.uint8)
    points = np.array([[10.0, 10.0], [np.nan, 5.0], [50.0, 10.0]])
    overlay.draw_path(img, points, (0, 0, 255), 1)
    assert tuple(img[10, 30]) != (255, 255, 255)  # on the line from (10, 10) to (50, 10)
    assert (img[40:] == 255).all()  # nothing below it
    overlay.draw_dots(img, points, overlay.time_colors(3), radius=3)
    assert tuple(img[10, 50]) == tuple(overlay.time_colors(3)[2])
    overlay.draw_ring(img, np.array([32.0, 40.0]), 8.0, overlay.GOAL_COLOR)
    assert tuple(img[40, 24]) != (255, 255, 255) and tuple(img[40, 32]) == (255, 255, 255)
    single = np.full((8, 8, 3), 255, dtype=np.uint8)
    overlay.draw_path(single, np.array([[2.0, 2.0]]), (0, 0, 0))
    assert (single == 255).all()


def test_stack_and_caption_lay_out_panels() -> None:
    red = np.zeros((16, 16, 3), dtype=np.uint8)
    red[..., 0] = 255
    bar = overlay.text_bar(100, ["one", "two"])
    assert bar.shape[1] == 100 and bar.shape[0] > 30
    grid = overlay.stack([[red, red], [bar]], gap=4)
    assert grid.shape == (16 + 4 + bar.shape[0], 100, 3)
    assert (grid[:16, 16:20] == 255).all()  # the gap between the two panels
    assert (grid[:16, 36:] == 255).all()  # the short row padded white
    assert overlay.stack([[red, red]], gap=0).shape == (16, 32, 3)
    captioned = overlay.caption(red, "x")
    assert captioned.shape == (32, 16, 3) and (captioned[16:] == red).all()


def test_bad_images_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"RGB uint8 image \[H, W, 3\], got float32"):
        overlay.upscale(np.zeros((8, 8, 3), dtype=np.float32), 32)
    with pytest.raises(ValueError, match=r"got uint8 \[8, 8\]"):
        overlay.caption(np.zeros((8, 8), dtype=np.uint8), "x")
