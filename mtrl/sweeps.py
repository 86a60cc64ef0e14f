"""Hyperparameter sweeps in one compiled program: every setting of a grid of numeric settings, times the seeds, is
one run on the run axis ``S`` of a single `Trainer` program.

A grid names settings and values, ``{"lr": (1e-4, 3e-4), "gamma": (0.99, 0.995)}`` (command line:
``--grid lr=1e-4,3e-4 gamma=0.99,0.995``); its settings are the Cartesian product, in the order given. Numeric
settings are array leaves of each run's state (`mtrl.agent.Hyperparams`, the learning rate in the optimiser state),
so they vary along the run axis without recompiling:

- global: ``lr``, ``gamma``, ``eps_start``, ``eps_end``, ``eps_decay`` (fraction of the budget), ``tau``,
  ``popart_step_size`` (with ``loss_aggregation="popart"``);
- per task, by the task's index in the task list: ``gamma.<t>``, ``eps_start.<t>``, ``eps_end.<t>``,
  ``eps_decay.<t>``, ``task_weight.<t>``.

A setting's global values are applied to its config (``lr=3e-4`` runs exactly as ``DQNConfig(lr=3e-4)`` alone, so
each setting equals its run alone; tested bit-identical on CPU), then per-task values to its hyperparameters.
Every other `DQNConfig` field changes the program's shapes or structure and is refused with the way to sweep it:
one program per value.

A grid too large for the device's memory is cut into shards (sequential programs, or submitit jobs with a
launcher); every shard writes its own program directory and the settings' run directories, and `collect` merges
them into one result, the same as one program's. The grid expansion, the shard layout and the comparison table are
written here rather than taken from a sweep library: the runs of a setting must share one compiled program with
the others, which is the part no general-purpose sweeper does.
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
    "gamma": ("gamma", (0.0, 1.0, True, False)),
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
# transfer settings (`mtrl.transfer.TransferConfig`) -> (the mode that uses them, allowed range)
TRANSFER = {"l2sp_alpha": ("l2sp", (0.0, math.inf, False, False)),
            "transfer_factor": ("joint", (0.0, math.inf, False, False))}


class GridError(ValueError):
    """A grid that cannot be swept in one program; the message names the setting and what is allowed."""


def allowed_names(num_tasks: int, transfer_mode: str | None = None) -> list[str]:
    return [*GLOBAL, *(name for name, (mode, _) in TRANSFER.items() if mode == transfer_mode),
            *(f"{name}.{t}" for name in PER_TASK for t in range(num_tasks))]


def parse_grid(items: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """``["lr=1e-4,3e-4", "gamma=0.99"]`` -> ``{"lr": (1e-4, 3e-4), "gamma": (0.99,)}`` (names checked later by
    `check_grid`, which knows the tasks)."""
    grid: dict[str, tuple[float, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GridError(f"--grid: {item!r} is not NAME=V1,V2,... (e.g. lr=1e-4,3e-4)")
        if name in grid:
            raise GridError(f"--grid: {name} is given twice; list all its values once: {name}=V1,V2,...")
        parsed = []
        for text in values.split(","):
            try:
                value = float(text)
            except ValueError:
                raise GridError(f"--grid: {name}: {text.strip()!r} is not a number") from None
            parsed.append(value)
        if len(set(parsed)) != len(parsed):
            raise GridError(f"--grid: {name} repeats a value: {values}")
        grid[name] = tuple(parsed)
    return grid


def check_grid(grid: Mapping[str, Sequence[float]], config: DQNConfig, num_tasks: int,
               transfer_mode: str | None = None) -> None:
    """Refuse (`GridError`, before anything is built) names that are not numeric per-run settings, values out of
    range, and settings this config (and transfer mode, for a transfer sweep) does not use."""
    if not grid:
        raise GridError("the grid is empty: give at least one NAME=V1,V2,... (e.g. --grid lr=1e-4,3e-4)")
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
            if base in config_fields or name in config_fields:
                how = (f"give it as a static setting (--static {name}=V1,V2; static=...), one program (shard) per value"
                       if name in STATIC else f"one `mtrl sweep` per value, with --{name.replace('_', '-')} set")
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
            if name not in STATIC:
                raise GridError(f"static {name}: not a static setting a sweep can vary across shards; allowed: "
                                f"{', '.join(STATIC)}")
            if types[name] in ("int", int):
                if not float(value).is_integer():
                    raise GridError(f"static {name}: {value:g} is not an integer")
                value = int(value)
            changes[name] = value
        changed = dataclasses.replace(config, **changes)
        changed.validate(num_tasks)
        if list(np.cumsum(changed.chunk_sizes()) * changed.num_envs) != list(
                np.cumsum(config.chunk_sizes()) * config.num_envs):
            raise GridError(f"static {changes}: the runs would be evaluated at other steps than the sweep's others "
                            "(num_envs must divide eval_every and total_steps the same way)")
        combos.append(changes)
    return combos


def plan_settings(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every setting of a sweep: each static combination (in order) times the numeric grid's settings."""
    return [{**static, **numeric} for static in grid_settings(plan.get("static") or {})
            for numeric in grid_settings(plan["grid"])]


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


def setting_label(setting: Mapping[str, float]) -> str:
    """A directory-safe label, ``lr=0.0003,gamma=0.99``."""
    return ",".join(f"{name}={value:g}" for name, value in setting.items())


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


PLAN_FILE = "sweep_plan.json"  # in the sweep's directory: tasks, config, grid, seeds and the settings of each shard
SHARD_FILE = "shard.json"  # in a finished shard's program directory: its evaluations and divergences
LAUNCHERS = ("local", "slurm")


def sweep(
    tasks: Sequence[str],
    config: DQNConfig,
    grid: Mapping[str, Sequence[float]],
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    progress: bool = True,
    *,
    max_settings_per_program: int | None = None,
    memory_budget: int | None = None,
    launcher: str | None = None,
    launcher_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    source: str | None = None,
    transfer: Any = None,
    static: Mapping[str, Sequence[float]] | None = None,
    **train_kwargs,
) -> dict[str, Any]:
    """Train every setting of ``grid`` x ``seeds`` in as few compiled programs as fit, and compare the settings.

    The settings are cut into **shards**, each one program (its runs: its settings x ``seeds``) in
    ``run_dir/shards/<i>/`` (config.json, checkpoints, and ``shard.json`` once finished): one shard when the
    sweep's estimated device memory (`program_bytes`) fits ``memory_budget`` (default: what the device has free,
    `available_bytes`) and ``max_settings_per_program`` allows, else several, trained one after another (said so).
    Each setting is logged as a plain run in ``run_dir/<label>/`` (`setting_label`; its config is the setting's
    config, so it reads and plots like any run; the checkpoints are the shard's). ``sweep.json``, ``sweep.md`` and
    ``sweep.png`` (`write_sweep`) compare the settings.

    ``launcher`` ``"local"`` or ``"slurm"`` runs the unfinished shards as separate jobs through submitit (local
    processes, or a SLURM job array; ``launcher_options`` go to `submitit.AutoExecutor.update_parameters`, e.g.
    ``{"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 240}``), waits for them and collects.

    ``static`` (e.g. ``{"batch_size": (64, 128)}``, `STATIC` fields) varies settings that change the program:
    every combination gets its own shards, each setting label starting with its static values.

    A **transfer sweep** (``source`` a source run's directory, ``transfer`` a `mtrl.transfer.TransferConfig`) trains
    every setting as `mtrl.transfer.train_transfer` would (the source spliced in, the mode's optimiser and loss),
    and may also sweep the mode's ``l2sp_alpha`` or ``transfer_factor``.

    Rerunning the same sweep continues it: finished shards are reused, interrupted ones resumed from their last
    checkpoint. A directory holding another sweep is refused with the differences (``overwrite`` moves it aside).
    ``train_kwargs`` go to `mtrl.trainer.train` (checkpoints, stop_at_step, log_every, tensorboard).

    Returns the content of sweep.json (`sweep_results`), or ``{"stopped_at": step, "signal": signum or None}``
    when a shard was stopped.
    """
    from mtrl.trainer import Trainer

    seeds = [int(s) for s in seeds]
    if (source is None) != (transfer is None):
        raise GridError("a transfer sweep needs both source (the source run) and transfer (its TransferConfig)")
    transfer_plan = None
    if source is not None:
        from mtrl.transfer import build_trainer, check_splice, load_source, target_config, target_task_list

        transfer.validate().check_acts(config)
        src = load_source(source, transfer.source_step)
        all_tasks = target_task_list(transfer.mode, src.tasks, tasks)
        trainer = build_trainer(all_tasks, target_config(config, transfer, len(src.tasks), len(tasks)), transfer)
        check_splice(src, trainer, transfer)
        transfer_plan = {"source": source, "settings": dataclasses.asdict(transfer), "target_tasks": list(tasks)}
    else:
        trainer = Trainer.create(list(tasks), config)
    check_grid(grid, config, trainer.taskset.num_tasks, None if transfer is None else transfer.mode)
    if launcher is not None and launcher not in LAUNCHERS:
        raise GridError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher is not None and run_dir is None:
        raise GridError("a launcher needs a run_dir: its jobs write their shards there")
    if launcher is not None:
        require_submitit()
    combos = check_static(static or {}, config, trainer.taskset.num_tasks) if static else [{}]
    block = len(grid_settings(grid))  # settings per static combination, consecutive in `plan_settings`
    labels = []
    for changes in combos:  # every setting's own config must be one `train` accepts
        for setting in grid_settings(grid):
            numeric = {n: v for n, v in setting.items() if n not in TRANSFER}
            try:
                setting_config(dataclasses.replace(config, **changes), numeric, trainer.taskset.num_tasks).validate(
                    trainer.taskset.num_tasks)
            except ValueError as e:
                raise GridError(f"setting {setting_label({**changes, **setting})}: {e}") from None
            labels.append(setting_label({**changes, **setting}))
    if len(set(labels)) != len(labels):
        raise GridError("two settings print the same label (values equal to 6 significant digits): "
                        f"{sorted({x for x in labels if labels.count(x) > 1})}")
    shards = []
    for c, changes in enumerate(combos):
        combo_trainer = trainer if not changes else Trainer.create(list(trainer.taskset.names),
                                                                   dataclasses.replace(config, **changes))
        per_program = settings_per_program(combo_trainer, block, len(seeds), max_settings_per_program, memory_budget)
        shards += [list(range(c * block + i, c * block + min(i + per_program, block)))
                   for i in range(0, block, per_program)]
    plan = {"tasks": trainer.taskset.names, "config": dataclasses.asdict(config),
            "grid": {k: list(v) for k, v in grid.items()},
            "static": {k: list(dict.fromkeys(c[k] for c in combos)) for k in (static or {})},  # typed values
            "seeds": seeds, "transfer": transfer_plan, "shards": shards}
    if run_dir is not None:
        plan = claim_sweep_dir(run_dir, plan, overwrite)
    if launcher is not None:
        return launch(run_dir, launcher, launcher_options or {}, **train_kwargs)
    contents = []
    for index in range(len(plan["shards"])):
        content = train_shard(plan, index, run_dir, progress, trainer=None if static else trainer, **train_kwargs)
        if "stopped_at" in content:
            return content
        contents.append(content)
    results = merge_shards(plan, contents)
    if run_dir is not None:
        write_sweep(run_dir, results)
    return results


def program_bytes(trainer: Any, num_runs: int) -> int:
    """Estimated device memory of a program of ``num_runs`` runs: twice the runs' state (the state itself, plus
    room for the update's and the evaluation's temporaries and the window-start copy of the train state); the
    replay dominates it."""
    import jax

    one = jax.eval_shape(trainer.init_run, jax.random.key(0), trainer.hparams, trainer.config.lr)
    return 2 * num_runs * sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(one))


def available_bytes() -> int:
    """Free memory of the local devices (an accelerator's allocator limit less what is in use), or of the host's
    RAM for CPU devices."""
    import os

    import jax

    free = 0
    for device in jax.local_devices():
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        free += stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return free


def settings_per_program(trainer: Any, num_settings: int, num_seeds: int, max_settings: int | None,
                         memory_budget: int | None) -> int:
    """How many settings (each with every seed) one program trains: all of them unless ``max_settings`` or the
    memory (``memory_budget``, default `available_bytes`, at 80%) says fewer; said so when the grid is split."""
    if max_settings is not None and max_settings < 1:
        raise GridError(f"max_settings_per_program must be >= 1, got {max_settings}")
    budget = int(0.8 * (available_bytes() if memory_budget is None else memory_budget))
    one_setting = program_bytes(trainer, num_seeds)
    fit = budget // one_setting
    if fit < 1:
        raise GridError(f"one setting x {num_seeds} seeds needs about {one_setting / 2**30:.2f} GiB of device memory, "
                        f"{budget / 2**30:.2f} GiB are available: use fewer seeds or a smaller buffer_size")
    per_program = min(num_settings, fit, max_settings or num_settings)
    # Runs shard over several devices only when their number divides evenly (`run_sharding`): a split grid's
    # programs take a multiple of the settings that makes it so, where one fits (the last may stay unsharded).
    import jax

    whole = len(jax.devices()) // math.gcd(len(jax.devices()), num_seeds)
    if per_program < num_settings and per_program >= whole:
        per_program -= per_program % whole
    if per_program < num_settings:
        programs = -(-num_settings // per_program)
        why = (f"about {one_setting * num_settings / 2**30:.2f} GiB for all {num_settings} settings, "
               f"{budget / 2**30:.2f} GiB available" if per_program == fit else "max_settings_per_program")
        print(f"sweep: {num_settings} settings x {num_seeds} seeds split into {programs} programs of up to "
              f"{per_program} settings ({why}), trained one after another or as separate jobs")
    return per_program


def claim_sweep_dir(run_dir: str, plan: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """Write ``plan`` to ``run_dir`` or return the plan of the same sweep already there (its shards are kept, so a
    rerun continues them); a directory holding another sweep or run is refused, or with ``overwrite`` moved aside."""
    import json
    import os

    from mtrl.logger import write_json
    from mtrl.provenance import ProvenanceMismatchError, identity_differences, move_aside

    path = os.path.join(run_dir, PLAN_FILE)
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            saved = json.load(f)
        keys = ("tasks", "config", "grid", "static", "seeds", "transfer")
        problems = identity_differences(saved, {k: plan[k] for k in keys})
        if problems:
            raise ProvenanceMismatchError(f"{run_dir} holds another sweep:\n  " + "\n  ".join(problems)
                                          + "\nuse another run_dir, or overwrite=True (--overwrite) to move it aside")
        return saved
    if os.path.exists(run_dir) and os.listdir(run_dir):
        if not overwrite:
            raise ProvenanceMismatchError(f"{run_dir} is not empty and holds no sweep; use another run_dir, or "
                                          "overwrite=True (--overwrite) to move it aside")
        print(f"moved what was in {run_dir} to {move_aside(run_dir)}")
    os.makedirs(run_dir, exist_ok=True)
    write_json(path, plan)
    return plan


def train_shard(plan: Mapping[str, Any], index: int, run_dir: str | None, progress: bool = True,
                trainer: Any = None, **train_kwargs) -> dict[str, Any]:
    """Train shard ``index`` of ``plan`` (one program: its settings x the seeds) into ``run_dir/shards/<index>``,
    or continue it: a finished shard's ``shard.json`` is read back, an interrupted one resumed. Returns the shard's
    content (its settings, evaluation steps, returns ``[E, R, T]`` and divergences by run), also written to
    shard.json, or ``{"stopped_at": ..., "signal": ...}``."""
    import json
    import os

    import jax
    import jax.numpy as jnp

    from mtrl.agent import default_hparams
    from mtrl.logger import RunGroup, write_json
    from mtrl.provenance import move_aside, run_status
    from mtrl.trainer import Trainer, train

    all_settings = plan_settings(plan)
    mine = list(plan["shards"][index])
    static = {n: v for n, v in all_settings[mine[0]].items() if n in (plan.get("static") or {})}
    config = dataclasses.replace(DQNConfig.from_dict(plan["config"]), **static)
    info = plan.get("transfer")
    if info is not None:
        from mtrl.transfer import (
            TransferConfig,
            build_trainer,
            initial_state_fn,
            load_source,
            provenance,
            target_config,
        )

        tcfg = TransferConfig.from_dict(info["settings"])
        src = load_source(info["source"], tcfg.source_step)
        targets = info["target_tasks"]

        def transfer_of(setting):  # the setting's TransferConfig and the config a target run of it trains with
            own = dataclasses.replace(tcfg, **{n: v for n, v in setting.items() if n in TRANSFER})
            return own, target_config(config, own, len(src.tasks), len(targets))

        trainer = trainer or build_trainer(plan["tasks"], transfer_of({})[1], tcfg)
    else:
        trainer = trainer or Trainer.create(plan["tasks"], config)
    num_tasks, seeds = trainer.taskset.num_tasks, list(plan["seeds"])
    program_dir = None if run_dir is None else os.path.join(run_dir, "shards", str(index))
    resume = False
    if program_dir is not None:
        if os.path.exists(os.path.join(program_dir, SHARD_FILE)):
            with open(os.path.join(program_dir, SHARD_FILE)) as f:
                return json.load(f)
        status = run_status(program_dir)
        if status == "started":  # stopped before its first checkpoint: nothing to resume
            move_aside(program_dir)
        resume = status in ("interrupted", "finished")
    run_seeds: list[int] = []
    hparams, learning_rates, groups = [], [], []
    for k in mine:
        setting = all_settings[k]
        metadata: dict[str, Any] = {"sweep_setting": dict(setting)}
        base_cfg = config
        if info is not None:
            own, base_cfg = transfer_of(setting)
            metadata["transfer"] = provenance(src, own, seeds, targets)
        setting_cfg = setting_config(base_cfg, {n: v for n, v in setting.items()
                                                if n not in TRANSFER and n not in static}, num_tasks)
        hp = default_hparams(trainer.taskset, setting_cfg)
        if info is not None and tcfg.mode == "l2sp":
            hp = hp.replace(l2sp_alpha=jnp.asarray(own.l2sp_alpha, jnp.float32))
        for field, values in per_task_overrides(setting, setting_cfg.total_steps).items():
            array = np.array(getattr(hp, field), np.float32)
            array[list(values)] = list(values.values())
            hp = hp.replace(**{field: jnp.asarray(array)})
        label = setting_label(setting)
        directory = None if run_dir is None else os.path.join(run_dir, label)
        if directory is not None and not resume and os.path.exists(directory):
            move_aside(directory)  # rows of an attempt that never reached a checkpoint: not mixed with this one
        groups.append(RunGroup(label, tuple(range(len(run_seeds), len(run_seeds) + len(seeds))), setting_cfg,
                               metadata, directory=directory))
        run_seeds += seeds
        hparams += [hp] * len(seeds)
        learning_rates += [setting_cfg.lr] * len(seeds)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *hparams)
    options = train_kwargs.get("wandb")
    if options is not None and options.group is None and run_dir is not None:  # one W&B group per sweep
        train_kwargs["wandb"] = dataclasses.replace(options, group=os.path.basename(os.path.normpath(run_dir)))
    extra: dict[str, Any] = {"sweep": {"grid": plan["grid"], "seeds": seeds, "shard": index, "settings": mine}}
    if info is not None:
        # each target run starts from the source run its seed would start from alone (seed index mod S_source)
        init_state = initial_state_fn(src, tcfg, stacked, learning_rates,
                                      source_runs=[j % len(src.seeds) for _ in mine for j in range(len(seeds))])
        extra["transfer"] = provenance(src, tcfg, run_seeds, targets)
    else:
        init_state = lambda tr, s: tr.init(s, stacked, learning_rates)  # noqa: E731
    result = train(None, seeds=run_seeds, run_dir=program_dir, progress=progress, trainer=trainer, groups=groups,
                   init_state=init_state, resume=resume, extra_metadata=extra, on_divergence="freeze",
                   **train_kwargs)
    if result.stopped_at is not None:
        return {"stopped_at": result.stopped_at, "signal": result.signal}
    content = {"shard": index, "settings": mine, "eval_steps": [int(s) for s in result.eval_steps],
               "eval_returns": np.asarray(result.eval_returns).tolist(),
               "diverged": {str(run): step for run, step in result.diverged.items()}}
    if program_dir is not None:
        write_json(os.path.join(program_dir, SHARD_FILE), content)
    return content


def merge_shards(plan: Mapping[str, Any], contents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sweep's results (`sweep_results`) from its shards' contents, settings in grid order."""
    settings = plan_settings(plan)
    n = len(plan["seeds"])
    steps = contents[0]["eval_steps"]
    returns: list[Any] = [None] * (len(settings) * n)
    diverged: dict[int, int] = {}
    for content in contents:
        if content["eval_steps"] != steps:
            raise ValueError("the sweep's shards were evaluated at different steps; they are not one sweep")
        shard_returns = np.asarray(content["eval_returns"], np.float64)  # [E, R_shard, T]
        for i, k in enumerate(content["settings"]):
            for j in range(n):
                returns[k * n + j] = shard_returns[:, i * n + j]
        for run, step in content["diverged"].items():
            i, j = divmod(int(run), n)
            diverged[content["settings"][i] * n + j] = step
    return sweep_results(settings, plan["tasks"], list(plan["seeds"]), np.asarray(steps),
                         np.stack(returns, axis=1), diverged)


def collect(run_dir: str) -> dict[str, Any]:
    """Merge the finished shards of the sweep in ``run_dir`` into sweep.json, sweep.md and sweep.png (also done
    when a sweep finishes); unfinished shards are named and nothing is written."""
    import json
    import os

    path = os.path.join(run_dir, PLAN_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} holds no sweep ({PLAN_FILE} is missing)")
    with open(path) as f:
        plan = json.load(f)
    contents, missing = [], []
    for index in range(len(plan["shards"])):
        shard_file = os.path.join(run_dir, "shards", str(index), SHARD_FILE)
        if not os.path.exists(shard_file):
            missing.append(index)
            continue
        with open(shard_file) as f:
            contents.append(json.load(f))
    if missing:
        raise ValueError(f"{run_dir}: shards {missing} of {len(plan['shards'])} are not finished; rerun the sweep "
                         "command to train (or resume) them")
    results = merge_shards(plan, contents)
    write_sweep(run_dir, results)
    return results


def _shard_job(run_dir: str, index: int, train_kwargs: dict) -> int:
    """One launcher job: shard ``index`` of the sweep in ``run_dir`` (a module-level function, so submitit can
    pickle it)."""
    import json
    import os

    with open(os.path.join(run_dir, PLAN_FILE)) as f:
        plan = json.load(f)
    content = train_shard(plan, index, run_dir, progress=False, **train_kwargs)
    if "stopped_at" in content:
        raise RuntimeError(f"shard {index} stopped at {content['stopped_at']:,} env steps per task; rerun the sweep "
                           "to resume it")
    return index


def require_submitit() -> None:
    """Fail early, before anything is built, when a launcher is asked for without submitit installed."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ImportError("launchers run shards through submitit: pip install 'mtrl-jax[cluster]'") from None


def launch(run_dir: str, launcher: str, options: Mapping[str, Any], **train_kwargs) -> dict[str, Any]:
    """Run the unfinished shards of the sweep in ``run_dir`` as submitit jobs (``launcher`` "local": processes on
    this machine; "slurm": one SLURM job array), wait for them, then `collect`."""
    import json
    import os

    import submitit

    with open(os.path.join(run_dir, PLAN_FILE)) as f:
        plan = json.load(f)
    pending = [i for i in range(len(plan["shards"]))
               if not os.path.exists(os.path.join(run_dir, "shards", str(i), SHARD_FILE))]
    if pending:
        executor = submitit.AutoExecutor(folder=os.path.join(run_dir, "jobs", "%j"), cluster=launcher)
        executor.update_parameters(**{"timeout_min": 24 * 60, "name": "mtrl-sweep", **options})
        jobs = executor.map_array(_shard_job, [run_dir] * len(pending), pending, [train_kwargs] * len(pending))
        print(f"sweep: {len(jobs)} shard job(s) submitted ({launcher}): {', '.join(j.job_id for j in jobs)}; logs in "
              f"{run_dir}/jobs/")
        for job in jobs:
            job.result()  # raises with the job's traceback if a shard failed
    return collect(run_dir)


def sweep_results(settings: list[dict[str, float]], task_names: list[str], seeds: list[int],
                  eval_steps: np.ndarray, eval_returns: np.ndarray, diverged: Mapping[int, int] | None = None
                  ) -> dict[str, Any]:
    """Per setting (runs in setting-major order on the run axis of ``eval_returns [E, R, T]``): each task's final
    greedy return and the score, the final return averaged over tasks (IQM and 95% interval over seeds), the area
    under the curve (greedy return averaged over the evaluations and tasks; same statistics), and ``diverged``
    (seed -> env steps per task where it was frozen; ``diverged`` maps run index -> step). The best setting is the
    one with the highest score's IQM among those where no seed diverged (among all when every one did)."""
    from mtrl.evaluate import summarize

    n = len(seeds)
    returns = np.asarray(eval_returns, np.float64)  # [E, R, T]
    rows = []
    for k, setting in enumerate(settings):
        runs = returns[:, k * n:(k + 1) * n]  # [E, n, T]
        rows.append({
            "label": setting_label(setting), "setting": dict(setting),
            "final_return": {name: summarize(runs[-1, :, t]) for t, name in enumerate(task_names)},
            "score": summarize(runs[-1].mean(-1)),
            "auc": summarize(runs.mean(axis=(0, 2))),
            "diverged": {str(seed): (diverged or {})[k * n + i] for i, seed in enumerate(seeds)
                         if k * n + i in (diverged or {})},
        })
    eligible = [k for k, row in enumerate(rows) if not row["diverged"]] or list(range(len(rows)))
    best = max(eligible, key=lambda k: rows[k]["score"]["iqm"])
    return {"tasks": task_names, "seeds": seeds, "grid": {name: sorted({s[name] for s in settings})
                                                         for name in settings[0]},
            "eval_steps": [int(s) for s in eval_steps], "settings": rows, "best": rows[best]["label"],
            "criterion": "highest IQM over seeds of the final greedy return averaged over tasks, among settings "
                         "where no seed diverged"}


def sweep_markdown(results: dict[str, Any]) -> str:
    """The sweep's table: one row per setting, best first marked."""
    from mtrl.logger import markdown_table, short_name

    names, tasks = list(results["grid"]), results["tasks"]

    def cell(s: dict) -> str:
        return f"{s['iqm']:.1f} [{s['ci_low']:.1f}, {s['ci_high']:.1f}]"

    def diverged(row: dict) -> str:
        return ", ".join(f"seed {seed} at {step:,}" for seed, step in row["diverged"].items()) or "—"

    rows = [[*(f"{row['setting'][n]:g}" for n in names), *(cell(row["final_return"][t]) for t in tasks),
             cell(row["score"]), cell(row["auc"]), diverged(row), "**best**" if row["label"] == results["best"] else ""]
            for row in results["settings"]]
    header = [*names, *(short_name(t) for t in tasks), "mean over tasks", "AUC", "diverged (frozen) at", ""]
    return (f"Sweep of {len(results['settings'])} settings x {len(results['seeds'])} seeds "
            f"({', '.join(map(str, results['seeds']))}), one program, {results['eval_steps'][-1]:,} env steps per "
            "task. Final greedy return: IQM [95% bootstrap interval of the mean over seeds]; AUC: return averaged over "
            "the evaluations; a seed whose parameters became non-finite was frozen at its last finite logging window "
            f"(its returns are the frozen policy's). Best: `{results['best']}` ({results['criterion']}).\n\n"
            + markdown_table(header, rows))


def write_sweep(run_dir: str, results: dict[str, Any]) -> None:
    """``sweep.json``, ``sweep.md`` and ``sweep.png`` (the score against each swept value) in ``run_dir``."""
    import os

    from mtrl.logger import write_json
    from mtrl.plots import plot_sweep

    write_json(os.path.join(run_dir, "sweep.json"), results)
    with open(os.path.join(run_dir, "sweep.md"), "w") as f:
        f.write(sweep_markdown(results) + "\n")
    plot_sweep(results, os.path.join(run_dir, "sweep.png"))
