"""The settings of a transfer run (`TransferConfig`: the mode and its parameters) and which of them each mode
depends on, apart from `mtrl.transfer`'s parameter surgery so that reading or checking them (the command line)
does not load jax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from mtrl.config import ConfigError, DQNConfig

MODES = ("scratch", "finetune", "frozen", "unfreeze", "l2sp", "joint")

# The `TransferSettings` fields each mode's training depends on (a study compares these, and only these, when it
# decides whether a finished mode run can be reused). `source_step` enters through the source fingerprint.
MODE_SETTINGS: dict[str, tuple[str, ...]] = {
    "scratch": (),
    "finetune": ("parts",),
    "frozen": ("parts",),
    "unfreeze": ("parts", "unfreeze_at", "unfreeze_lr_scale"),
    "l2sp": ("parts", "l2sp_alpha"),
    "joint": ("parts", "transfer_factor"),
}


@dataclasses.dataclass(frozen=True)
class TransferSettings:
    """Settings of the transfer modes (a study shares them across its modes)."""

    parts: tuple[str, ...] = ("torso",)
    """parameter parts spliced from the source (and frozen or regularised)"""
    unfreeze_at: int = 50_000
    """unfreeze: env steps per task during which the spliced parts stay frozen"""
    unfreeze_lr_scale: float = 1.0
    """unfreeze: learning-rate factor for the spliced parts once they train"""
    l2sp_alpha: float = 0.01
    """l2sp: weight alpha of the penalty alpha * ||theta - theta_source||^2"""
    transfer_factor: float = 1.0
    """joint: lambda in L = L_source + lambda * L_target"""
    source_step: int | None = None
    """source checkpoint (env steps per task); default the latest"""

    def with_mode(self, mode: str) -> TransferConfig:
        """These settings for one mode."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(TransferSettings)}
        return TransferConfig(mode=mode, **settings)


@dataclasses.dataclass(frozen=True)
class TransferConfig(TransferSettings):
    """How a target run uses a source run (the modes: README's transfer table, or `mtrl.transfer`'s docstring)."""

    mode: Literal["scratch", "finetune", "frozen", "unfreeze", "l2sp", "joint"] = "finetune"
    """scratch (nothing transferred), finetune (source torso, everything trains), frozen (source torso never
    updated), unfreeze (frozen for --unfreeze-at env steps, then trained), l2sp (finetune + --l2sp-alpha pull toward
    the source torso) or joint (source tasks stay, L = L_source + --transfer-factor L_target)"""

    def validate(self) -> TransferConfig:
        """Raise `ValueError` naming the first bad field and what is allowed; return self."""
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if not self.parts or any(p not in ("adapter", "torso", "head") for p in self.parts):
            raise ConfigError(f"parts must name parameter parts among adapter, torso, head; got {self.parts!r}")
        checks = {
            "unfreeze_at": (isinstance(self.unfreeze_at, int) and self.unfreeze_at >= 0, "an integer >= 0"),
            "unfreeze_lr_scale": (self.unfreeze_lr_scale > 0, "> 0"),
            "l2sp_alpha": (self.l2sp_alpha >= 0, ">= 0"),
            "transfer_factor": (self.transfer_factor >= 0, ">= 0"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        return self

    def check_acts(self, config: DQNConfig) -> TransferConfig:
        """Raise `ValueError` when this mode's setting cannot act in a run of ``config`` (the mode would silently
        equal another one): an unfreeze point at or past the run's end (= frozen), L2-SP with α = 0 (=
        finetune), joint with λ = 0 (the targets would not train); also joint with task weights of its own (joint
        sets them), and a head held or anchored by a mode under PopArt (which rescales heads). Return self."""
        if self.mode == "unfreeze":
            before = updates_before(config, min(self.unfreeze_at, config.total_steps))
            if before >= config.num_updates:
                raise ConfigError(f"unfreeze_at ({self.unfreeze_at:,}) must come before the run's last update "
                                  f"(total_steps {config.total_steps:,}): the torso would never unfreeze and "
                                  "'unfreeze' would be 'frozen'")
            if before == 0 and self.unfreeze_lr_scale == 1:
                raise ConfigError(f"unfreeze_at ({self.unfreeze_at:,}) must come after the first update "
                                  f"(learning_starts {config.learning_starts:,}), or unfreeze_lr_scale differ from 1: "
                                  "otherwise 'unfreeze' is 'finetune'")
        if config.loss_aggregation == "popart" and "head" in self.parts and self.mode in ("frozen", "unfreeze", "l2sp"):
            raise ConfigError(f"parts must not include 'head' in mode {self.mode} with loss_aggregation 'popart': "
                              "PopArt rescales the heads' last layer whenever its statistics move, so a frozen head "
                              "would still change and L2-SP would compare normalised heads with unnormalised ones")
        if self.mode == "joint" and config.task_weights is not None:
            raise ConfigError(f"task_weights must be unset in mode joint (got {config.task_weights}): joint weights "
                              "the source tasks' losses 1 and the target tasks' transfer_factor itself")
        if self.mode == "l2sp" and self.l2sp_alpha == 0:
            raise ConfigError("l2sp_alpha must be > 0 in mode l2sp: with 0 the penalty vanishes and 'l2sp' is "
                              "'finetune'")
        if self.mode == "joint" and self.transfer_factor == 0:
            raise ConfigError("transfer_factor must be > 0 in mode joint: with 0 the target tasks get no loss")
        return self

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransferConfig:
        d = dict(d)
        d["parts"] = tuple(d.get("parts", ("torso",)))
        return cls(**d)


def updates_before(config: DQNConfig, env_steps: int) -> int:
    """Gradient updates a run takes before ``env_steps`` env steps per task."""
    return config.updates_in(-(-env_steps // config.num_envs))
