"""grasp_ros.viz: colours by time step, the online PCA fallback, the decoded mosaic, markers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grasp_ros import viz
from grasp_ros.models.analytic import PointWallModel
from grasp_ros.models.base import WorldModel
from grasp_ros.viz import overlay

RNG = np.random.default_rng(3)


class ColourModel(WorldModel):
    """A decoder whose image is one flat colour: the first three latent elements."""

    def __init__(self, latent_shape: tuple[int, ...] = (4,), size: int = 16) -> None:
        super().__init__(latent_shape, 2)
        self.size = size

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        flat = latents.reshape(len(latents), -1)[:, :3]
        return flat[:, :, None, None].expand(-1, -1, self.size, self.size)


# -- time colours -------------------------------------------------------------------------------
def test_time_colors_are_the_overlay_colours_as_rgba():
    colors = viz.time_colors(5, alpha=0.5)
    assert colors.shape == (5, 4) and colors.dtype == np.float32
    np.testing.assert_allclose(colors[:, :3] * 255, overlay.time_colors(5), atol=1e-4)
    assert np.all(colors[:, 3] == 0.5)
    assert not np.allclose(colors[0], colors[-1])
    assert viz.time_colors(0).shape == (0, 4)
    assert viz.time_colors(1).shape == (1, 4)


# -- online PCA ---------------------------------------------------------------------------------
def _pairwise(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_pca_keeps_distances_of_latents_in_a_3d_subspace():
    basis = np.linalg.qr(RNG.normal(size=(40, 3)))[0].T  # orthonormal rows
    coords = RNG.normal(size=(60, 3)) * [5.0, 2.0, 0.5]
    latents = coords @ basis + 7.0
    pca = viz.OnlinePCA()
    pca.update(latents)
    projected = pca.project(latents)
    assert projected.shape == (60, 3) and projected.dtype == np.float32
    np.testing.assert_allclose(_pairwise(projected), _pairwise(coords), atol=1e-3)
    np.testing.assert_allclose(projected.mean(0), 0.0, atol=1e-4)


def test_pca_fitted_in_batches_equals_one_fit_and_keeps_its_signs():
    latents = RNG.normal(size=(90, 6)) * [4.0, 2.0, 1.0, 0.3, 0.2, 0.1]
    whole = viz.OnlinePCA()
    whole.update(latents)
    parts = viz.OnlinePCA()
    for chunk in np.split(latents, 3):
        before = parts.project(latents[:5]) if parts.count else None
        parts.update(chunk)
        if before is not None:  # the same point does not jump to the mirrored side
            assert np.all(np.sum(before * parts.project(latents[:5]), axis=0) > 0)
    assert parts.count == whole.count == 90
    np.testing.assert_allclose(
        np.abs(parts.project(latents)), np.abs(whole.project(latents)), atol=1e-4
    )


def test_pca_sketches_large_latents_and_finds_the_main_direction():
    direction = RNG.normal(size=(16, 40))
    t = np.linspace(-1, 1, 50)
    latents = t[:, None, None] * direction + 0.01 * RNG.normal(size=(50, 16, 40))
    pca = viz.OnlinePCA(sketch_dim=32)
    pca.update(latents)
    first = pca.project(latents)[:, 0]
    assert abs(np.corrcoef(first, t)[0, 1]) > 0.99


def test_pca_refits_on_a_new_latent_size_and_refuses_bad_calls():
    pca = viz.OnlinePCA()
    with pytest.raises(ValueError, match="before update"):
        pca.project(np.zeros((2, 5)))
    pca.update(torch.randn(10, 5))
    pca.update(np.zeros((0, 5)))  # nothing to add
    assert pca.count == 10
    with pytest.raises(ValueError, match="fitted on 5"):
        pca.project(np.zeros((2, 7)))
    pca.update(np.ones((4, 2)))  # a 2-element latent: two axes, the third coordinate stays 0
    assert pca.latent_size == 2 and pca.count == 4
    assert np.all(pca.project(np.ones((3, 2)))[:, 2] == 0)
    with pytest.raises(ValueError, match="components"):
        viz.OnlinePCA(components=4, sketch_dim=3)


# -- mosaic -------------------------------------------------------------------------------------
def test_mosaic_indices_keep_first_and_last():
    pick = viz.mosaic_indices(31, 8)
    assert len(pick) == 8 and pick[0] == 0 and pick[-1] == 30
    assert np.all(np.diff(pick) > 0)
    assert list(viz.mosaic_indices(3, 8)) == [0, 1, 2]
    assert len(viz.mosaic_indices(0, 8)) == 0


def test_decode_mosaic_lays_out_decoded_states_with_time_colours():
    model = ColourModel(size=16)
    latents = np.zeros((6, 4), np.float32)
    latents[:, 0] = np.linspace(0, 1, 6)  # red ramps over time
    mosaic = viz.decode_mosaic(model, latents, columns=4, gap=2)
    bar = 2  # max(2, 16 // 16)
    assert mosaic.dtype == np.uint8
    assert mosaic.shape == (2 * (16 + bar) + 2, 4 * 16 + 3 * 2, 3)
    tile = mosaic[:16, 18:34]  # second tile of the first row
    assert np.all(tile == [51, 0, 0])
    np.testing.assert_array_equal(mosaic[16, 18], overlay.time_colors(6)[1])
    second_row_first = mosaic[16 + bar + 2 : 16 + bar + 2 + 16, :16]
    assert np.all(second_row_first == [204, 0, 0])


def test_decode_mosaic_caps_the_tiles_and_refuses_what_it_cannot_draw():
    model = ColourModel(size=16)
    big = viz.decode_mosaic(model, torch.rand(101, 4), columns=8, max_tiles=16)
    assert big.shape[0] == 2 * (16 + 2) + 2
    with pytest.raises(ValueError, match="no decode"):
        viz.decode_mosaic(PointWallModel(), np.zeros((3, 32)))
    with pytest.raises(ValueError, match="latent_shape"):
        viz.decode_mosaic(model, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="columns"):
        viz.decode_mosaic(model, np.zeros((3, 4)), columns=0)
    with pytest.raises(ValueError, match="at least one"):
        viz.decode_mosaic(model, np.zeros((0, 4)))


# -- markers ------------------------------------------------------------------------------------
def _line(n: int, dx: float = 1.0) -> np.ndarray:
    return np.stack([np.arange(n) * dx, np.zeros(n), np.zeros(n)], axis=1)


def test_trajectory_markers_draw_states_rollout_goal_and_label():
    states, rollout = _line(9), _line(9, 0.9)
    markers = viz.trajectory_markers(
        states, rollout, size=0.5, planner="grasp", cost=0.01234, iterations=20
    )
    by_name = {(m.ns, m.marker_id): m for m in markers}
    assert len(by_name) == len(markers) == 5
    strip, spheres = by_name["virtual_states", 0], by_name["virtual_states", 1]
    assert strip.kind == "line_strip" and spheres.kind == "sphere_list"
    np.testing.assert_array_equal(spheres.points, states)
    np.testing.assert_array_equal(spheres.colors, viz.time_colors(9))
    assert spheres.scale == (0.5, 0.5, 0.5) and 0 < strip.scale[0] < 0.5
    goal = by_name["goal", 0]
    assert goal.kind == "sphere"
    np.testing.assert_array_equal(goal.points, states[-1:])
    roll = by_name["rollout", 0]
    np.testing.assert_array_equal(roll.points, rollout)
    assert roll.colors.shape == (1, 4)
    label = by_name["info", 0]
    assert label.kind == "text" and "grasp" in label.text
    assert "0.01234" in label.text and "20 it" in label.text
    assert label.points[0, 2] > states[0, 2]


def test_trajectory_markers_without_rollout_or_cost_and_with_bad_input():
    markers = viz.trajectory_markers(
        _line(3), None, size=1.0, planner="cem", cost=math.nan, iterations=0
    )
    assert {m.ns for m in markers} == {"virtual_states", "goal", "info"}
    assert "n/a" in markers[-1].text
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        viz.trajectory_markers(np.zeros((4, 2)), None, size=1, planner="x", cost=0, iterations=0)
    with pytest.raises(ValueError, match="at least 2"):
        viz.trajectory_markers(_line(1), None, size=1, planner="x", cost=0, iterations=0)


def test_world_markers_draw_the_agent_block_and_goal_pose():
    from grasp_ros.envs import make_env

    env = make_env("pusht")
    task = env.sample_task(20, seed=0)
    markers = {
        (m.ns, m.marker_id): m for m in viz.world_markers(env, task.start_state, task.goal_state)
    }
    assert set(markers) == {("agent", 0), ("block", 0), ("goal_block", 0)}
    np.testing.assert_allclose(markers["agent", 0].points, [[*task.start_state[:2], 0.0]])
    assert markers["agent", 0].scale[0] == 2 * env.agent_radius
    block, goal = markers["block", 0].points, markers["goal_block", 0].points
    assert block.shape == (9, 3) and (block[0] == block[-1]).all()  # closed T outline
    np.testing.assert_allclose(goal[:-1, :2], env.outlines(task.goal_state)["block"])
    assert tuple(markers["goal_block", 0].colors[0]) == pytest.approx(viz.GOAL_RGBA)

    wall = make_env("wall")
    state, goal_state = wall.random_states(np.random.default_rng(0), 2)
    markers = {m.ns: m for m in viz.world_markers(wall, state, goal_state)}
    assert set(markers) == {"agent", "goal"}
    np.testing.assert_allclose(markers["goal"].points, [[*goal_state[:2], 0.0]])
    assert markers["goal"].scale[0] == 2 * wall.success_radius
