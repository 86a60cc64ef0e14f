"""`mtrl.render`: episode frames drawn from observations (grids cell by cell, classic control as schematics) and
the GIF they make."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from mtrl.policy import Episode
from mtrl.render import ACCENT, CAPTION_PX, CLASSIC_COLOURS, SEPARATOR, check_drawable, frames, save_gif, tiled_frames
from mtrl.tasks import parse_task


def episode(spec: str, observations, ended: bool = True) -> Episode:
    """An episode of ``observations`` (the last one the final observation), reward 1 per step."""
    observations = np.asarray(observations)
    steps = len(observations) - 1
    return Episode(task=parse_task(spec), observations=observations[:-1], actions=np.zeros(steps, np.int32),
                   rewards=np.ones(steps, np.float32), ended=ended, final_observation=observations[-1])


def accent_centre(image: Image.Image) -> tuple[float, float]:
    """(column, row) centre of the pixels in the drawings' accent colour (the pole, links, car)."""
    rows, cols = np.nonzero(np.asarray(image) == ACCENT)
    return cols.mean(), rows.mean()


def test_a_grid_cell_takes_the_colour_of_its_highest_active_channel():
    obs = np.zeros((2, 10, 10, 4), bool)  # Breakout: [H, W, C]
    obs[0, 2, 3, 1] = True
    obs[0, 5, 5, [0, 3]] = True
    (first, second) = frames(episode("Breakout-MinAtar", obs))
    cell = 240 // 10
    pixels = np.asarray(first)
    assert first.size == (240, 240 + CAPTION_PX) and first.mode == "P"
    assert pixels[2 * cell + cell // 2, 3 * cell + cell // 2] == 2 + 1
    assert pixels[5 * cell + cell // 2, 5 * cell + cell // 2] == 2 + 3
    assert (pixels[:240] != 0).sum() == 2 * cell * cell  # nothing else drawn on the grid
    assert (np.asarray(second)[:240] == 0).all()
    palette = first.getpalette()[: 3 * 6]
    assert len({tuple(palette[i:i + 3]) for i in range(6, 18, 3)}) == 4  # each channel its own colour
    assert (pixels[240:] == 1).any()  # the caption
    ended, cut = (frames(episode("Breakout-MinAtar", obs, ended))[-1] for ended in (True, False))
    assert (np.asarray(ended)[240:] != np.asarray(cut)[240:]).any()  # the last caption says which
    long = frames(episode("Asterix-MinAtar:ramping=False", obs))[0]  # too long a caption: step and return only
    assert np.nonzero((np.asarray(long)[240:] == 1).any(0))[0].max() < 236


def test_classic_control_drawings_follow_the_state():
    left, right, tilted = frames(episode("CartPole-v1", [[-1.5, 0, 0, 0], [1.5, 0, 0, 0], [0, 0, 0.3, 0]]))
    assert accent_centre(left)[0] < 120 < 240 < accent_centre(right)[0]
    assert accent_centre(tilted)[0] > 180  # leaning right of the cart in the middle
    longer = frames(episode("CartPole-v1:length=2.0", [[0, 0, 0, 0]]))[0]
    assert accent_centre(longer)[1] < accent_centre(frames(episode("CartPole-v1", [[0, 0, 0, 0]]))[0])[1]
    down, up = frames(episode("Acrobot-v1", [[1, 0, 1, 0, 0, 0], [-1, 0, 1, 0, 0, 0]]))  # θ₁ = 0, then π
    assert accent_centre(down)[1] > 120 > accent_centre(up)[1]  # below, then above the pivot
    valley, near_goal = frames(episode("MountainCar-v0", [[-0.5, 0], [0.45, 0]]))
    assert accent_centre(valley)[0] < accent_centre(near_goal)[0] and accent_centre(valley)[1] > \
        accent_centre(near_goal)[1]


def test_an_episode_becomes_a_gif_with_a_frame_per_step(tmp_path):
    steps = np.zeros((4, 10, 10, 7), bool)
    steps[np.arange(4), 9 - np.arange(4), 4, 0] = True  # the chicken crossing
    path = save_gif(episode("Freeway-MinAtar", steps), str(tmp_path / "freeway.gif"), fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 200 and gif.size == (240, 240 + CAPTION_PX)
        gif.seek(3)
        rgb = np.asarray(gif.convert("RGB"))
        assert tuple(rgb[6 * 24 + 12, 4 * 24 + 12]) != (0, 0, 0) and tuple(rgb[9 * 24 + 12, 4 * 24 + 12]) == (0, 0, 0)
    with pytest.raises(ValueError, match=r"fps must be in \(0, 50\]"):
        save_gif(episode("Freeway-MinAtar", steps), str(tmp_path / "x.gif"), fps=0)


def test_observations_that_are_neither_a_grid_nor_classic_control_are_refused():
    with pytest.raises(ValueError, match=r"cannot draw MemoryChain-bsuite: its observations are \(3,\), not a grid"):
        check_drawable(parse_task("MemoryChain-bsuite"))
    check_drawable(parse_task("Catch-bsuite"))  # a [10, 5] grid
    with pytest.raises(ValueError, match="cannot draw MemoryChain-bsuite"):
        frames(dataclasses.replace(episode("CartPole-v1", [[0, 0, 0, 0]]), task=parse_task("MemoryChain-bsuite")))


def test_episodes_tile_side_by_side_in_one_palette_the_shorter_holding_its_last_frame(tmp_path):
    grid = np.zeros((3, 10, 10, 4), bool)
    grid[:, 2, 3, 1] = True
    breakout, cartpole = episode("Breakout-MinAtar", grid), episode("CartPole-v1", [[-1, 0, 0, 0], [1, 0, 0.2, 0]])
    tiled = tiled_frames([breakout, cartpole])
    assert len(tiled) == 3 and tiled[0].size == (240 + 4 + 360, 240 + CAPTION_PX)
    rgb = [np.asarray(image.convert("RGB")) for image in tiled]
    np.testing.assert_array_equal(rgb[0][:, :240], np.asarray(frames(breakout)[0].convert("RGB")))
    np.testing.assert_array_equal(rgb[1][:, 244:], np.asarray(frames(cartpole)[1].convert("RGB")))
    np.testing.assert_array_equal(rgb[2][:, 244:], rgb[1][:, 244:])  # CartPole's episode ended: held
    assert (rgb[0][:, 240:244] == SEPARATOR).all()
    assert (rgb[0][:, 244:] == CLASSIC_COLOURS[ACCENT]).all(-1).any()  # the pole in its own colour
    path = save_gif([breakout, cartpole], str(tmp_path / "both.gif"))
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 100  # a grid game: 10 frames per second
