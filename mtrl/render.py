"""Frames of a recorded episode (`mtrl.policy.Episode`), of several side by side (`tiled_frames`: one network
playing each of its tasks), and an animated GIF of them.

Drawn here from the observations alone with Pillow (installed with matplotlib): gymnax's own visualiser draws from
env states through matplotlib animations and needs seaborn (MinAtar) and gymnasium's pygame renderer (classic
control), which mtrl does not depend on, and writes one frame per matplotlib draw (slow for a 1000-step episode).
Grid observations (MinAtar's ``[10, 10, C]``, Catch's ``[10, 5]``, DeepSea's, Pong's) are drawn cell by cell,
each cell in the colour of its highest active channel (as gymnax's MinAtar view); CartPole, Acrobot and
MountainCar as their classic schematics, from the state in the observation and the task's own pole length and
goal. Each frame has a caption: the task, the step and the return so far.

Axes: ``L`` steps of an episode; frames are ``H x W`` pixels, palette images (one byte per pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

CLASSIC = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
CAPTION_PX = 16
GRID_PX = 240  # the longer side of a grid's drawing
CLASSIC_SIZE = (360, 240)
GAP_PX, SEPARATOR = 4, (225, 225, 225)  # between tiled episodes (unlike any grid colour)
BLACK, WHITE, GREY, DARK, ACCENT, GOAL = 0, 1, 2, 3, 4, 5  # palette indices of the classic drawings
CLASSIC_COLOURS = [(0, 0, 0), (255, 255, 255), (170, 170, 170), (60, 60, 60), (31, 119, 180), (214, 39, 40)]


def drawable(task) -> bool:
    """Whether `frames` can draw episodes of ``task`` (a `mtrl.tasks.Task`): grid observations (2 or 3 axes) or a
    `CLASSIC` env."""
    return task.env_id in CLASSIC or len(tuple(task.obs_shape)) in (2, 3)


def check_drawable(task) -> None:
    """Raise `ValueError` naming the env unless `drawable` (``task``)."""
    if not drawable(task):
        raise ValueError(f"cannot draw {task.env_id}: its observations are {tuple(task.obs_shape)}, not a grid, and "
                         f"it is not one of {', '.join(CLASSIC)}; Policy.record_episode gives its observations, "
                         "actions and rewards")


def frames(episode) -> list[Image.Image]:
    """One palette image per step of ``episode`` (`mtrl.policy.Episode`): the observation each action was chosen
    on, captioned with the task, step and the return before that step's reward; then one more of the final
    observation with the whole return, marked ``ended`` or ``cut``."""
    frame, count, _ = _drawing(episode)
    return [frame(i) for i in range(count)]


def tiled_frames(episodes: Sequence) -> list[Image.Image]:
    """The `frames` of several ``episodes`` side by side, one image per frame of the longest (an episode that
    ended earlier holds its last frame), in one palette: every task played by one network at once."""
    return list(_iter_tiled(episodes))


def save_gif(episodes, path: str, fps: float | None = None) -> str:
    """Write an `mtrl.policy.Episode` (or several side by side, `tiled_frames`) as an animated GIF at ``path``
    (``fps`` frames per second, at most 50, rounded to the GIF's hundredths of a second; default 10 with a grid
    game, 30 for classic control alone) and return the path. Frames are drawn as the file is written."""
    if fps is not None and not 0 < fps <= 50:
        raise ValueError(f"fps must be in (0, 50] (GIF frame times are hundredths of a second, at least 2), got {fps}")
    several = not hasattr(episodes, "task")
    episodes = list(episodes) if several else [episodes]
    classic = all(e.task.env_id in CLASSIC for e in episodes)
    if several:
        images = _iter_tiled(episodes)
    else:
        frame, count, _ = _drawing(episodes[0])
        images = (frame(i) for i in range(count))
    centiseconds = max(2, round(100 / (fps or (30.0 if classic else 10.0))))
    next(images).save(path, save_all=True, append_images=images, duration=10 * centiseconds, loop=0,
                      optimize=False)
    return path


def _iter_tiled(episodes: Sequence) -> Iterator[Image.Image]:
    """`tiled_frames`, drawn one at a time."""
    drawn = [_drawing(episode) for episode in episodes]
    offsets = np.cumsum([0] + [len(colours) for _, _, colours in drawn])
    gap = int(offsets[-1])  # the separator's palette index, after every episode's colours
    if gap + 1 > 256:
        raise ValueError(f"{len(drawn)} episodes need {gap + 1} colours, more than a GIF's 256: tile fewer")
    palette = _palette([colour for _, _, colours in drawn for colour in colours] + [SEPARATOR])
    held = [frame(0) for frame, _, _ in drawn]  # each episode's latest frame
    height = max(image.height for image in held)
    for step in range(max(count for _, count, _ in drawn)):
        tiles = []
        for i, ((frame, count, _), offset) in enumerate(zip(drawn, offsets[:-1], strict=True)):
            if 0 < step < count:
                held[i] = frame(step)
            tile = np.asarray(held[i]).astype(np.uint16) + offset
            tile = np.pad(tile, ((0, height - tile.shape[0]), (0, 0)), constant_values=offset)  # black below
            tiles += [tile, np.full((height, GAP_PX), gap, np.uint16)]
        image = Image.fromarray(np.concatenate(tiles[:-1], axis=1).astype(np.uint8), "P")
        image.putpalette(palette)
        yield image


def _drawing(episode) -> tuple[Callable[[int], Image.Image], int, list[tuple[int, int, int]]]:
    """(``frame(i)``, the number of frames, the colours of their palette in index order) of ``episode``: its L
    steps' observations and the final one."""
    task = episode.task
    check_drawable(task)
    draw, colours = (_classic(task) if task.env_id in CLASSIC else _grid(tuple(task.obs_shape)))
    palette = _palette(colours)
    steps = len(episode.actions)
    returns = np.concatenate([[0.0], np.cumsum(episode.rewards, dtype=np.float32)])  # [L + 1]: before each step
    font = ImageFont.load_default()

    def frame(i: int) -> Image.Image:
        image = draw(np.asarray(episode.observations[i] if i < steps else episode.final_observation))
        captioned = Image.new("P", (image.width, image.height + CAPTION_PX), 0)
        captioned.putpalette(palette)
        captioned.paste(image, (0, 0))
        canvas = ImageDraw.Draw(captioned)
        end = "" if i < steps else ("  ended" if episode.ended else "  cut")
        caption = f"{task.spec}  step {i}  return {returns[i]:g}{end}"
        if canvas.textlength(caption, font=font) > image.width - 8:  # a long spec: the step and return only
            caption = f"step {i}  return {returns[i]:g}{end}"
        canvas.text((4, image.height + 2), caption, fill=1, font=font)
        return captioned

    return frame, steps + 1, colours


def _palette(colours: list[tuple[int, int, int]]) -> list[int]:
    return [c for colour in colours for c in colour] + [0] * (3 * (256 - len(colours)))


def _grid(obs_shape: tuple[int, ...]) -> tuple[Callable[[np.ndarray], Image.Image], list[tuple[int, int, int]]]:
    """Grid observations ``[H, W]`` or ``[H, W, C]``: cell colour = 2 + its highest active channel (0: black,
    nothing active; 1: white, the caption)."""
    height, width = obs_shape[:2]
    channels = obs_shape[2] if len(obs_shape) == 3 else 1
    cmap = colormaps["tab10" if channels <= 10 else "tab20"]
    colours = [(0, 0, 0), (255, 255, 255)] + [tuple(int(255 * v) for v in cmap(c)[:3]) for c in range(channels)]
    cell = max(4, GRID_PX // max(height, width))

    def draw(obs: np.ndarray) -> Image.Image:
        active = (obs.reshape(height, width, channels) > 0)
        index = np.where(active.any(-1), 2 + channels - 1 - np.argmax(active[..., ::-1], axis=-1), 0)
        image = Image.fromarray(np.kron(index, np.ones((cell, cell), int)).astype(np.uint8), "P")
        image.putpalette(_palette(colours))
        return image

    return draw, colours


def _classic(task) -> tuple[Callable[[np.ndarray], Image.Image], list[tuple[int, int, int]]]:
    """CartPole, Acrobot or MountainCar drawn from an observation, with ``task.params`` (lengths, goal)."""
    width, height = CLASSIC_SIZE
    params = task.params
    draw_state = {"CartPole-v1": _cartpole, "Acrobot-v1": _acrobot, "MountainCar-v0": _mountaincar}[task.env_id]

    def draw(obs: np.ndarray) -> Image.Image:
        image = Image.new("P", CLASSIC_SIZE, WHITE)
        image.putpalette(_palette(CLASSIC_COLOURS))
        draw_state(ImageDraw.Draw(image), obs, params, width, height)
        return image

    return draw, CLASSIC_COLOURS


def _cartpole(canvas: ImageDraw.ImageDraw, obs: np.ndarray, params, width: int, height: int) -> None:
    """Track, cart at x, pole (length 2·``length``) at angle θ from upright; obs = (x, ẋ, θ, θ̇)."""
    x, theta = float(obs[0]), float(obs[2])
    world = 2.4 * float(params.x_threshold)
    pole = 2.0 * float(params.length)
    scale = min(width / world, 0.65 * height / pole)
    track_y = height - 40
    cx = width / 2 + x * scale
    canvas.line([(0, track_y), (width, track_y)], fill=DARK)
    for bound in (-1, 1):  # where an episode ends
        bx = width / 2 + bound * float(params.x_threshold) * scale
        canvas.line([(bx, track_y - 6), (bx, track_y + 6)], fill=GOAL, width=2)
    canvas.rectangle([cx - 20, track_y - 20, cx + 20, track_y], fill=DARK)
    top = (cx + pole * scale * math.sin(theta), track_y - 20 - pole * scale * math.cos(theta))
    canvas.line([(cx, track_y - 20), top], fill=ACCENT, width=6)
    canvas.ellipse([cx - 3, track_y - 23, cx + 3, track_y - 17], fill=GREY)


def _acrobot(canvas: ImageDraw.ImageDraw, obs: np.ndarray, params, width: int, height: int) -> None:
    """Two links hanging from the pivot, angles θ₁ (from straight down) and θ₂ (relative); obs = (cos θ₁, sin θ₁,
    cos θ₂, sin θ₂, θ̇₁, θ̇₂). Drawn as unit links whatever the task's lengths (they change the dynamics, not the
    end): the line is the height the tip must pass, gymnax's −cos θ₁ − cos(θ₁ + θ₂) > 1."""
    theta1, theta2 = math.atan2(float(obs[1]), float(obs[0])), math.atan2(float(obs[3]), float(obs[2]))
    scale = 0.45 * height / 2.0
    px, py = width / 2, height / 2
    p1 = (px + scale * math.sin(theta1), py + scale * math.cos(theta1))
    p2 = (p1[0] + scale * math.sin(theta1 + theta2), p1[1] + scale * math.cos(theta1 + theta2))
    canvas.line([(px - 2 * scale, py - scale), (px + 2 * scale, py - scale)], fill=GOAL)
    canvas.line([(px, py), p1], fill=ACCENT, width=6)
    canvas.line([p1, p2], fill=ACCENT, width=6)
    for joint in ((px, py), p1):
        canvas.ellipse([joint[0] - 4, joint[1] - 4, joint[0] + 4, joint[1] + 4], fill=DARK)


def _mountaincar(canvas: ImageDraw.ImageDraw, obs: np.ndarray, params, width: int, height: int) -> None:
    """The hill y = sin(3x), the car at its position, the flag at the goal; obs = (position, velocity)."""
    low, high = float(params.min_position), float(params.max_position)
    margin, top, bottom = 12, 44, 16  # room for the car at either end and the flag above the hill

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (margin + (x - low) / (high - low) * (width - 2 * margin),
                height - bottom - (y + 1.0) / 2.0 * (height - top - bottom))

    hill = [to_px(x, math.sin(3 * x)) for x in np.linspace(low, high, 100)]
    canvas.line(hill, fill=DARK, width=2)
    gx, gy = to_px(float(params.goal_position), math.sin(3 * float(params.goal_position)))
    canvas.line([(gx, gy), (gx, gy - 30)], fill=DARK, width=2)
    canvas.polygon([(gx, gy - 30), (gx + 14, gy - 25), (gx, gy - 20)], fill=GOAL)
    cx, cy = to_px(float(obs[0]), math.sin(3 * float(obs[0])))
    canvas.ellipse([cx - 9, cy - 18, cx + 9, cy], fill=ACCENT)
