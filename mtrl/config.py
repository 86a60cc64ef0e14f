"""Training configuration: one frozen dataclass, validated before anything compiles.

Step counts are *per task*: every task steps ``num_envs`` envs each iteration, so after i iterations each task
has taken ``i * num_envs`` env steps, whatever the number of tasks.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import warnings
from collections.abc import Collection, Mapping
from typing import Annotated, Literal

import tyro

# A tuple setting whose default is empty: the command line's help says "(default: none)", not "(default: )".
EMPTY_BY_DEFAULT = tyro.conf.arg(help_behavior_hint="(default: none)")


class _NamesSettings:
    """A message that starts with the setting's name (a field of `DQNConfig` or of `mtrl.transfer.TransferConfig`, or
    an argument of `mtrl.trainer.train` such as ``checkpoints.every``), which the command line shows as its flag
    (``eval_every`` -> ``--eval-every``)."""

    @property
    def field(self) -> str:
        return (str(self).split(maxsplit=1) or [""])[0]

    def with_flags(self, settings: Collection[str] | Mapping[str, str]) -> str:
        """The message with the ``settings`` it names written as command-line flags (``eval_every must be a multiple
        of num_envs`` -> ``--eval-every must be a multiple of --num-envs``): its first word, and every other setting
        name with an underscore in it (one-word names such as ``torso`` are ordinary words too). A mapping gives a
        setting's flag where it is not the name's (``{"checkpoints.keep": "--keep-checkpoints"}``). What the user gave
        stays as given: nothing from ``got`` on, nor anything quoted (an apostrophe inside a word opens no quote)."""

        def flag(name: str) -> str:
            if isinstance(settings, Mapping) and name in settings:
                return settings[name]
            return f"--{name.replace('_', '-')}" if name in settings else name

        head, _, rest = str(self).partition(" ")
        got = re.search(r"\bgot\b", rest)
        explained, given = (rest[:got.start()], rest[got.start():]) if got else (rest, "")
        explained = re.sub(r"(?<![A-Za-z])'[^']*'|\"[^\"]*\"|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b",
                           lambda m: m.group(0) if m.group(0)[0] in "'\"" else flag(m.group(0)), explained)
        return f"{flag(head)} {explained}{given}" if rest else flag(head)


class ConfigError(_NamesSettings, ValueError):
    """A setting that cannot run, named first in the message."""


class ConfigWarning(_NamesSettings, UserWarning):
    """A setting that runs but likely not as meant (a run without updates), named first in the message."""


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Multi-task DQN settings (static: changing one recompiles)."""

    total_steps: int = 300_000
    """env steps per task"""
    num_envs: int = 10
    """parallel envs per task"""
    buffer_size: int = 50_000
    """replay capacity per task (transitions); 50k, not 10k: with 10k, runs that had held 500 on CartPole collapsed
    late in training (docs/results.md)"""
    batch_size: int = 128
    """transitions sampled per task per update"""
    learning_starts: int = 5_000
    """env steps per task before the first update"""
    update_every: int = 1
    """iterations (each `num_envs` env steps per task) between gradient updates"""
    target_update_period: int = 100
    """gradient updates between target-network updates"""
    tau: float = 1.0
    """target update step size: 1.0 = hard copy, < 1 = Polyak averaging"""
    lr: float = 5e-4
    """Adam learning rate"""
    lr_end_fraction: float = 0.5
    """learning rate at the end of training, as a fraction of `lr` (linear decay; 1.0 = constant)"""
    max_grad_norm: float | None = 10.0
    """global gradient-norm clip; None: no clipping (as PureJaxRL's and CleanRL's DQN)"""
    learner_diagnostics: bool = True
    """log each update's diagnostics besides the TD loss: mean |TD error|, mean Q of the taken actions, gradient
    norm. False logs them as NaN (not measured) and saves their reductions, a few GPU kernels per update, as
    PureJaxRL's program, which logs the loss only; training is unchanged"""
    gamma: float = 0.995
    """discount for tasks whose spec sets none"""
    eps_start: float = 1.0
    """exploration epsilon at step 0, for tasks whose spec sets none"""
    eps_end: float = 0.01
    """exploration epsilon after the decay, for tasks whose spec sets none"""
    eps_decay_fraction: float = 0.3
    """fraction of total_steps over which epsilon decays linearly"""
    n_step: int = 3
    """steps summed into each TD target (n-step returns, cut at episode ends; 1 = one-step DQN). This, the replay
    size, the lr and the ε floor were chosen on tuning seeds (experiments/robustness.py, docs/results.md)"""
    double_q: bool = True
    """double-DQN targets (False = plain max over the target network)"""
    loss: Literal["huber", "l2"] = "l2"
    """TD loss: l2 = ½δ², or huber (δ = --huber-delta). Huber (δ=1) learned CartPole far worse with these settings
    (docs/results/huber.md)."""
    huber_delta: float = 1.0
    """Huber threshold"""
    torso: tuple[int, ...] = (120, 84)
    """hidden sizes of the shared torso's dense layers"""
    conv_channels: Annotated[tuple[int, ...], EMPTY_BY_DEFAULT] = ()
    """output channels of 3x3, stride-1, unpadded conv layers before the dense ones, for image observations
    [H, W, C] (the MinAtar paper's network: conv_channels=(16,), torso=(128,)); () = dense layers only"""
    layer_norm: bool = False
    """LayerNorm after every torso layer (conv and dense)"""
    adapter_size: int = 0
    """per-task input adapter width (0 = none): Dense+ReLU on flat inputs, or a 1x1 conv+ReLU with this many
    channels when conv_channels is set"""
    dueling: bool = False
    """dueling heads"""
    task_weights: tuple[float, ...] | None = None
    """loss weight per task (default 1 each): L = sum_t w_t mean_i loss"""
    loss_aggregation: Literal["sum", "popart"] = "sum"
    """how task losses combine: the weighted sum of raw TD losses, or the same sum over PopArt-normalised TD
    errors (each task's targets scaled by its running mean and deviation; mtrl.popart)"""
    popart_step_size: float = 3e-4
    """step size of PopArt's running statistics, per target (loss_aggregation="popart")"""
    protocol: Literal["gymnax", "minatar-paper"] = "gymnax"
    """environment protocol for MinAtar games (mtrl.tasks): gymnax's minimal action sets and caps, or the MinAtar
    paper's full action set, sticky actions (0.1) and no episode cap"""
    eval_every: int = 20_000
    """env steps per task between evaluations, a multiple of num_envs (also the compiled chunk length; the last
    chunk may be shorter)"""
    eval_episodes: int = 10
    """evaluation episodes per task and seed at each evaluation"""
    eval_epsilon: float = 0.0
    """probability of a uniformly random valid action at each step of an evaluation episode (0 = greedy;
    DQN's Atari protocol evaluated at 0.05, Mnih et al. 2015)"""

    @classmethod
    def from_dict(cls, values: dict) -> DQNConfig:
        """From `dataclasses.asdict` output read back from JSON (lists become tuples); unknown keys are an error,
        missing ones take `FIELDS_ADDED_LATER`'s value or the default."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; allowed: {sorted(fields)}")
        values = {**FIELDS_ADDED_LATER, **values}  # a run saved before a field existed ran without it
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @classmethod
    def with_defaults(cls, values: dict | None) -> dict:
        """A saved config dict completed with the fields it lacks (runs saved before those fields existed): at
        `FIELDS_ADDED_LATER`'s values, which reproduce what such runs did, else at their defaults."""
        return {**dataclasses.asdict(cls()), **FIELDS_ADDED_LATER, **(values or {})}

    @property
    def iterations(self) -> int:
        """Total iterations: ``total_steps / num_envs`` exactly (`validate` requires a multiple)."""
        return self.total_steps // self.num_envs

    @property
    def chunk_iterations(self) -> int:
        """Iterations per full compiled chunk (one evaluation after each; `validate` requires ``eval_every`` to be a
        multiple of ``num_envs``)."""
        return max(1, self.eval_every // self.num_envs)

    @property
    def num_chunks(self) -> int:
        return -(-self.iterations // self.chunk_iterations)

    @property
    def num_evaluations(self) -> int:
        """Evaluations of a run: one before training and one after every chunk."""
        return self.num_chunks + 1

    def chunk_sizes(self) -> list[int]:
        """Iterations of each chunk: full chunks, then a shorter last one when ``total_steps`` is not a multiple of
        the chunk, so a run trains exactly ``total_steps`` env steps per task."""
        full, rest = divmod(self.iterations, self.chunk_iterations)
        return [self.chunk_iterations] * full + ([rest] if rest else [])

    @property
    def first_update_iteration(self) -> int:
        """The first iteration that `learns` (at or past `iterations` when none does)."""
        stored = max(-(-self.learning_starts // self.num_envs) - 1, 0)
        return -(-stored // self.update_every) * self.update_every

    @property
    def num_updates(self) -> int:
        """Gradient updates in the whole run."""
        return self.updates_in(self.iterations)

    def updates_in(self, iterations: int) -> int:
        """Gradient updates in the first ``iterations`` iterations: those from `first_update_iteration` on that are
        a multiple of ``update_every`` (the iterations where `learns` holds, counted without visiting each)."""
        return max(-(-(iterations - self.first_update_iteration) // self.update_every), 0)

    def learns(self, iteration):
        """Whether iteration ``iteration`` (0-based; a Python int or a traced int32) takes a gradient step:
        once ``learning_starts`` env steps per task are stored, every ``update_every`` iterations."""
        return ((iteration + 1) * self.num_envs >= self.learning_starts) & (iteration % self.update_every == 0)

    def validate(self, num_tasks: int | None = None) -> DQNConfig:
        """Raise `ValueError` naming the first bad field and what is allowed (warn when no update would run);
        return self."""
        positive = ("total_steps", "num_envs", "buffer_size", "batch_size", "update_every",
                    "target_update_period", "eval_every", "eval_episodes", "n_step")
        for name in positive:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name, why in (("total_steps", "every iteration steps each env once"),
                          ("eval_every", "evaluations come between iterations")):
            value = getattr(self, name)
            if value % self.num_envs:
                low = value - value % self.num_envs
                nearest = f"{low} or {low + self.num_envs}" if low else f"{self.num_envs}"
                raise ConfigError(f"{name} must be a multiple of num_envs ({self.num_envs}: {why}), got {value}; use "
                                  f"{nearest}")
        if not _is_int(self.learning_starts) or self.learning_starts < 0:
            raise ConfigError(f"learning_starts must be an integer >= 0, got {self.learning_starts!r}")
        for name in ("double_q", "dueling", "layer_norm", "learner_diagnostics"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for field in dataclasses.fields(self):  # before the range checks, which compare them with numbers
            value = getattr(self, field.name)
            if field.type in ("float", "float | None") and not (
                    (isinstance(value, numbers.Real) and not isinstance(value, bool))
                    or (value is None and field.type == "float | None")):
                raise ConfigError(f"{field.name} must be a number, got {value!r}")
        if self.buffer_size < self.num_envs:
            raise ConfigError(f"buffer_size must be >= num_envs ({self.num_envs}), got {self.buffer_size}")
        if self.n_step > 1 and self.buffer_size % self.num_envs:
            raise ConfigError(f"buffer_size must be a multiple of num_envs ({self.num_envs}) when n_step > 1 (n-step "
                              f"windows follow each env through the buffer), got {self.buffer_size}")
        checks = {
            "tau": (0.0 < self.tau <= 1.0, "in (0, 1]"),
            "lr": (self.lr > 0.0, "> 0"),
            "max_grad_norm": (self.max_grad_norm is None or 0.0 < self.max_grad_norm < math.inf,
                              "finite and > 0, or None (no clipping)"),
            "gamma": (0.0 <= self.gamma <= 1.0, "in [0, 1]"),
            "eps_start": (0.0 <= self.eps_start <= 1.0, "in [0, 1]"),
            "eps_end": (0.0 <= self.eps_end <= 1.0, "in [0, 1]"),
            "eval_epsilon": (0.0 <= self.eval_epsilon <= 1.0, "in [0, 1] (0 = greedy evaluation)"),
            "lr_end_fraction": (0.0 <= self.lr_end_fraction <= 1.0, "in [0, 1]"),
            "eps_decay_fraction": (0.0 <= self.eps_decay_fraction <= 1.0, "in [0, 1]"),
            "huber_delta": (self.huber_delta > 0.0, "> 0"),
            "adapter_size": (_is_int(self.adapter_size) and self.adapter_size >= 0, "an integer >= 0"),
            "popart_step_size": (0.0 < self.popart_step_size <= 1.0, "in (0, 1]"),
            "conv_channels": (isinstance(self.conv_channels, (tuple, list))
                              and all(_is_int(c) and c >= 1 for c in self.conv_channels),
                              "a tuple of positive channel counts (or empty)"),
            "loss_aggregation": (self.loss_aggregation in ("sum", "popart"), "'sum' or 'popart'"),
            "protocol": (self.protocol in ("gymnax", "minatar-paper"), "'gymnax' or 'minatar-paper'"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        if self.loss_aggregation == "popart" and self.popart_step_size * self.batch_size >= 1.0:
            raise ConfigError(f"popart_step_size must be < 1 / batch_size ({1 / self.batch_size:.2g}): PopArt's "
                              f"statistics take one step per target, got {self.popart_step_size}")
        if self.loss not in ("huber", "l2"):
            raise ConfigError(f"loss must be 'huber' or 'l2', got {self.loss!r}")
        if (not isinstance(self.torso, (tuple, list)) or not self.torso
                or any(not _is_int(h) or h < 1 for h in self.torso)):
            raise ConfigError(f"torso must be a tuple of one or more positive integer layer sizes, got {self.torso!r}")
        if self.task_weights is not None:
            if num_tasks is not None and len(self.task_weights) != num_tasks:
                raise ConfigError(
                    f"task_weights must have one weight per task ({num_tasks}), got {len(self.task_weights)}"
                )
            if not all(isinstance(w, numbers.Real) and math.isfinite(w) and w >= 0 for w in self.task_weights):
                raise ConfigError(f"task_weights must be finite and >= 0, got {self.task_weights}")
            if not sum(self.task_weights) > 0:
                raise ConfigError(f"task_weights must not all be 0 (no task would train), got {self.task_weights}")
        if self.first_update_iteration >= self.iterations:
            warnings.warn(ConfigWarning(
                f"learning_starts ({self.learning_starts:,}) leaves no gradient update in total_steps "
                f"({self.total_steps:,}) with update_every {self.update_every}: this run does not learn"), stacklevel=2)
        elif self.first_update_iteration >= 0.9 * self.iterations:
            warnings.warn(ConfigWarning(
                f"learning_starts ({self.learning_starts:,}) leaves {self.num_updates:,} gradient update(s) in "
                f"total_steps ({self.total_steps:,}): the first 90% or more of the run only fills the replay, so it "
                "barely learns; lower learning_starts"), stacklevel=2)
        if self.batch_size > self.buffer_size:
            warnings.warn(ConfigWarning(f"batch_size ({self.batch_size:,}) is larger than buffer_size "
                                        f"({self.buffer_size:,}): every batch repeats transitions"), stacklevel=2)
        return self


def _is_int(value) -> bool:
    """An integer, not a bool (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


# Fields added after runs were first saved, with the value that reproduces what a run saved without them did
# (its config.json lacks them): those runs used one-step targets, no LayerNorm, no conv layers, the plain sum of
# task losses and gymnax's protocol, logged every learner diagnostic and evaluated greedily.
FIELDS_ADDED_LATER = {"n_step": 1, "layer_norm": False, "conv_channels": (), "loss_aggregation": "sum",
                      "popart_step_size": 3e-4, "protocol": "gymnax", "learner_diagnostics": True,
                      "eval_epsilon": 0.0}
