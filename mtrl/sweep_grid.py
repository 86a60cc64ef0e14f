"""A sweep's grid: which settings may vary along the run axis of one program, their parsing and checks, and how a
setting is applied to a run's config and hyperparameters (`mtrl.sweeps`).

Names: global ``lr``, ``gamma``, ``eps_start``, ``eps_end``, ``eps_decay`` (fraction of the budget), ``tau``,
``popart_step_size``; per task (by index) ``gamma.<t>``, ``eps_start.<t>``, ``eps_end.<t>``, ``eps_decay.<t>``,
``task_weight.<t>``; a transfer sweep's ``l2sp_alpha`` or ``transfer_factor``; `STATIC` fields and the network's
layer sizes (`SHAPE_STATIC`, written ``64x64``) only across shards.
Written here, not taken from a sweep library: which settings can share a compiled program is mtrl's own contract.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtrl.config import DQNConfig

# grid name -> (the DQNConfig field it sets, allowed range as (low, high, low inclusive, high inclusive))
GLOBAL = {
    "lr": ("lr", (0.0, math.inf, False, False)),
    "gamma": ("gamma", (0.0, 1.0, True, True)),
    "eps_start": ("eps_start", (0.0, 1.0, True, True)),
    "eps_end": ("eps_end", (0.0, 1.0, True, True)),
    "eps_decay": ("eps_decay_fraction", (0.0, 1.0, False, True)),
    "tau": ("tau", (0.0, 1.0, False, True)),
    "popart_step_size": ("popart_step_size", (0.0, 1.0, False, True)),
}
# per-task grid name -> the `Hyperparams` field ([T]) it sets
PER_TASK = {"gamma": "gammas", "eps_start": "eps_start", "eps_end": "eps_end", "eps_decay": "eps_decay_steps",
            "task_weight": "task_weights"}
TASK_WEIGHT_RANGE = (0.0, math.inf, True, False)
# static settings a sweep may vary across its shards (each value its own program): numeric `DQNConfig` fields that
# change shapes or schedules but keep the evaluation steps of every shard the same
STATIC = ("num_envs", "buffer_size", "batch_size", "learning_starts", "update_every", "target_update_period",
          "n_step", "lr_end_fraction", "max_grad_norm", "huber_delta", "adapter_size", "eval_episodes")
# static settings that are layer sizes (tuples of ints), written as widths joined by "x": torso=64x64,256x256
SHAPE_STATIC = ("torso", "conv_channels")
# transfer settings (`mtrl.transfer.TransferConfig`) -> (the mode that uses them, allowed range)
TRANSFER = {"l2sp_alpha": ("l2sp", (0.0, math.inf, False, False)),
            "transfer_factor": ("joint", (0.0, math.inf, False, False))}


# numeric `DQNConfig` fields whose None means "off" (no gradient clip): a sweep cannot hold None among numbers
OPTIONAL_FIELDS = tuple(f.name for f in dataclasses.fields(DQNConfig) if str(f.type) == "float | None")


class GridError(ValueError):
    """A grid that cannot be swept in one program; the message names the setting and what is allowed."""


def allowed_names(num_tasks: int, transfer_mode: str | None = None) -> list[str]:
    return [*GLOBAL, *(name for name, (mode, _) in TRANSFER.items() if mode == transfer_mode),
            *(f"{name}.{t}" for name in PER_TASK for t in range(num_tasks))]


def parse_grid(items: Sequence[str], flag: str = "--grid") -> dict[str, tuple[Any, ...]]:
    """``["lr=1e-4,3e-4", "gamma=0.99"]`` -> ``{"lr": (1e-4, 3e-4), "gamma": (0.99,)}``, layer sizes
    ``["torso=64x64,256"]`` -> ``{"torso": ((64, 64), (256,))}`` (names checked later by `check_grid` or
    `check_static`, which know the tasks); ``flag`` names the option in errors."""
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GridError(f"{flag}: {item!r} is not NAME=V1,V2,... (e.g. lr=1e-4,3e-4)")
        if name in grid:
            raise GridError(f"{flag}: {name} is given twice; list all its values once: {name}=V1,V2,...")
        parsed: list[Any] = []
        for text in values.split(","):
            if name in SHAPE_STATIC:
                parsed.append(parse_sizes(text, f"{flag}: {name}"))
                continue
            try:
                value = float(text)
            except ValueError:
                hint = ""
                if text.strip().lower() == "none" and name in OPTIONAL_FIELDS:
                    hint = (f"; a sweep varies numbers only: sweep with and without {name} as two sweeps, one "
                            f"with --{name.replace('_', '-')} None")
                raise GridError(f"{flag}: {name}: {text.strip()!r} is not a number{hint}") from None
            parsed.append(value)
        if len(set(parsed)) != len(parsed):
            raise GridError(f"{flag}: {name} repeats a value: {values}")
        grid[name] = tuple(parsed)
    return grid


def parse_sizes(text: str, where: str) -> tuple[int, ...]:
    """``"64x64"`` -> ``(64, 64)`` (``"none"`` -> ``()``, no layers); `GridError` at ``where`` otherwise."""
    text = text.strip().lower()
    if text == "none":
        return ()
    parts = text.split("x")
    if not all(p.isdecimal() and int(p) > 0 for p in parts):
        raise GridError(f"{where}: {text!r} is not layer sizes: positive widths joined by x, e.g. 64x64 (or none)")
    return tuple(int(p) for p in parts)


def format_value(value: Any) -> str:
    """A setting's value as labels and tables print it: ``0.0003``, layer sizes as ``64x64`` (none: ``none``)."""
    if isinstance(value, (tuple, list)):
        return "x".join(str(int(v)) for v in value) or "none"
    return f"{value:g}"


def check_grid(grid: Mapping[str, Sequence[float]], config: DQNConfig, num_tasks: int,
               transfer_mode: str | None = None, static: Mapping[str, Sequence[float]] | None = None) -> None:
    """Refuse (`GridError`, before anything is built) names that are not numeric per-run settings, values out of
    range, and settings this config (and transfer mode, for a transfer sweep) does not use. The grid may be empty
    when ``static`` settings are swept (each static setting then one program of the seeds)."""
    if not grid and not static:
        raise GridError("the grid is empty: give at least one NAME=V1,V2,... (e.g. --grid lr=1e-4,3e-4), or static "
                        "settings alone (--static batch_size=32,64)")
    config_fields = {f.name for f in dataclasses.fields(DQNConfig)}
    for name, values in grid.items():
        base, _, task = name.partition(".")
        if not values:
            raise GridError(f"grid {name}: no values")
        if name in TRANSFER:
            mode, (low, high, _, _) = TRANSFER[name]
            if transfer_mode != mode:
                raise GridError(f"grid {name}: a setting of transfer mode {mode}; sweep it from a source run "
                                f"(--source RUN --mode {mode}; mtrl.sweep(..., source=RUN, transfer="
                                f"TransferConfig(mode='{mode}')))")
            if any(not low < v < high for v in values):
                raise GridError(f"grid {name}: values must be > 0, got {list(values)}")
            continue
        if name not in GLOBAL and not (base in PER_TASK and task):
            swept_as = {field: grid_name for grid_name, (field, _) in GLOBAL.items() if field != grid_name}
            swept_as["task_weights"] = "task_weight.<t>"
            if name in swept_as:
                raise GridError(f"grid {name}: sweep it as {swept_as[name]}")
            if task and base in swept_as and swept_as[base] in PER_TASK:  # a task spec's field name, per task
                raise GridError(f"grid {name}: sweep it as {swept_as[base]}.{task}")
            if task and base in GLOBAL:
                raise GridError(f"grid {name}: {base} is one value for all tasks of a run; sweep it as {base}. "
                                f"Per task: {', '.join(f'{n}.<t>' for n in PER_TASK)}")
            if base in config_fields or name in config_fields:
                how = (f"give it as a static setting (--static {name}=V1,V2; static=...), one program (shard) per value"
                       if name in (*STATIC, *SHAPE_STATIC)
                       else f"one `mtrl sweep` per value, with --{name.replace('_', '-')} set")
                raise GridError(
                    f"grid {name}: a static setting (it changes the compiled program's shapes or structure), so it "
                    f"cannot vary inside one program; {how}. Numeric settings: "
                    f"{', '.join(allowed_names(num_tasks, transfer_mode))}")
            raise GridError(f"grid {name}: unknown setting; numeric settings: "
                            f"{', '.join(allowed_names(num_tasks, transfer_mode))}")
        if task:
            if not task.isdigit() or int(task) >= num_tasks:
                raise GridError(f"grid {name}: the task index must be 0..{num_tasks - 1} (the order of the tasks)")
            if base in GLOBAL and base in grid:
                raise GridError(f"grid {name}: {base} is swept for every task already; sweep one or the other")
        low, high, low_in, high_in = TASK_WEIGHT_RANGE if base == "task_weight" else GLOBAL[base][1]
        for v in values:
            if not (low <= v <= high) or (v == low and not low_in) or (v == high and not high_in):
                interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
                raise GridError(f"grid {name}: {v:g} is outside {interval}")
        if base == "popart_step_size" and config.loss_aggregation != "popart":
            raise GridError("grid popart_step_size: needs --loss-aggregation popart (the sum has no PopArt step)")


def check_static(static: Mapping[str, Sequence[float]], config: DQNConfig, num_tasks: int
                 ) -> list[dict[str, Any]]:
    """The static settings' combinations (`STATIC` fields only, each combination's config valid), as config
    changes; `GridError` / the config's own `ValueError` name the field otherwise."""
    types = {f.name: f.type for f in dataclasses.fields(DQNConfig)}
    combos = []
    for values in grid_settings(static):
        changes = {}
        for name, value in values.items():
            if name not in STATIC and name not in SHAPE_STATIC:
                raise GridError(f"static {name}: not a static setting a sweep can vary across shards; allowed: "
                                f"{', '.join((*STATIC, *SHAPE_STATIC))}")
            if name in SHAPE_STATIC:
                if not isinstance(value, (tuple, list)) or not all(float(v).is_integer() and v > 0 for v in value):
                    raise GridError(f"static {name}: {value!r} is not layer sizes (a tuple of positive widths)")
                value = tuple(int(v) for v in value)
            elif types[name] in ("int", int):
                if not float(value).is_integer():
                    raise GridError(f"static {name}: {value:g} is not an integer")
                value = int(value)
            changes[name] = value
        try:  # with num_envs dividing total_steps and eval_every, every combination evaluates at the same steps
            dataclasses.replace(config, **changes).validate(num_tasks)
        except ValueError as error:
            raise GridError(f"static {changes}: {error}") from None
        combos.append(changes)
    return combos


def plan_settings(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every setting of a sweep: each static combination (in order) times the numeric grid's settings (layer sizes
    as tuples, also when the plan was read back from JSON)."""
    static = {name: [tuple(v) if name in SHAPE_STATIC else v for v in values]
              for name, values in (plan.get("static") or {}).items()}
    return [{**combo, **numeric} for combo in grid_settings(static) for numeric in grid_settings(plan["grid"])]


def grid_settings(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The grid's settings, the Cartesian product in the order given (the last name varies fastest)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def setting_config(config: DQNConfig, setting: Mapping[str, float], num_tasks: int) -> DQNConfig:
    """``config`` with a setting's global values (and its per-task task weights) in place: the config a setting's
    runs train with, as if alone."""
    changes: dict[str, Any] = {GLOBAL[name][0]: value for name, value in setting.items() if name in GLOBAL}
    weights = {int(n.split(".")[1]): v for n, v in setting.items() if n.startswith("task_weight.")}
    if weights:
        base = list(config.task_weights) if config.task_weights is not None else [1.0] * num_tasks
        changes["task_weights"] = tuple(weights.get(t, w) for t, w in enumerate(base))
    return dataclasses.replace(config, **changes)


# per-task grid name -> the task-spec field that sets it for a run trained alone: the config field of the same
# global name (`mtrl.tasks.LEARNER_FIELDS`); task weights stay in the config
SPEC_FIELDS = {name: GLOBAL[name][0] for name in PER_TASK if name != "task_weight"}


def setting_tasks(tasks: Sequence[str], setting: Mapping[str, float]) -> list[str]:
    """The task specs a setting's runs train with, as if alone: each per-task value (``gamma.<t>`` ...) written into
    task t's spec (``Acrobot-v1:gamma=0.9``; a field the spec already sets is replaced). Task weights are in the
    setting's config (`setting_config`)."""
    fields: dict[int, dict[str, str]] = {}
    for name, value in setting.items():
        base, _, task = name.partition(".")
        if task and base in SPEC_FIELDS:
            fields.setdefault(int(task), {})[SPEC_FIELDS[base]] = format_value(value)
    out = []
    for t, spec in enumerate(tasks):
        if t not in fields:
            out.append(spec)
            continue
        env_id, _, rest = spec.partition(":")
        kept = [item for item in rest.split(",") if item and item.partition("=")[0] not in fields[t]]
        out.append(env_id + ":" + ",".join(kept + [f"{k}={v}" for k, v in fields[t].items()]))
    return out


def setting_label(setting: Mapping[str, float]) -> str:
    """A directory-safe label, ``lr=0.0003,gamma=0.99``."""
    return ",".join(f"{name}={format_value(value)}" for name, value in setting.items())


def per_task_overrides(setting: Mapping[str, float], total_steps: int) -> dict[str, dict[int, float]]:
    """Hyperparams field -> {task index: value} for a setting's per-task values other than task weights (those are
    in its config); ``eps_decay`` as env steps per task, computed as `mtrl.agent.default_hparams` does."""
    out: dict[str, dict[int, float]] = {}
    for name, value in setting.items():
        base, _, task = name.partition(".")
        if task and base != "task_weight":
            if base == "eps_decay":
                value = float(np.float32(max(1.0, np.float64(value) * total_steps)))
            out.setdefault(PER_TASK[base], {})[int(task)] = value
    return out
