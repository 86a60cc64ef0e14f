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
launcher); every shard writes its own program directory and the settings' run directories, and
`mtrl.sweep_shards.collect` merges them into one result, the same as one program's. The grid
(`mtrl.sweep_grid`), the shard layout (`mtrl.sweep_shards`) and the comparison table (`mtrl.sweep_results`) are
written in mtrl rather than taken from a sweep library: the runs of a setting must share one compiled program with
the others, which is the part no general-purpose sweeper does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from mtrl.config import DQNConfig
from mtrl.distributed import is_primary
from mtrl.sweep_grid import TRANSFER, GridError, check_grid, check_static, grid_settings, setting_config, setting_label
from mtrl.sweep_results import write_sweep
from mtrl.sweep_shards import (
    LAUNCHERS,
    check_launcher_options,
    claim_sweep_dir,
    launch,
    merge_shards,
    program_sizes,
    require_submitit,
    train_shard,
)


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
    command: str | None = None,
    **train_kwargs,
) -> dict[str, Any]:
    """Train every setting of ``grid`` x ``seeds`` in as few compiled programs as fit, and compare the settings.

    The settings are cut into **shards**, each one program (its runs: its settings x ``seeds``) in
    ``run_dir/shards/<i>/`` (config.json, checkpoints, and ``shard.json`` once finished): one shard when the
    sweep's estimated device memory (`mtrl.sweep_shards.program_bytes`) fits ``memory_budget`` (bytes over all
    devices; default: what they have free, `mtrl.sweep_shards.available_bytes`; required with the SLURM launcher:
    one job's GPUs together, whose job re-checks it before compiling) and ``max_settings_per_program`` allows,
    else several (`mtrl.sweep_shards.program_sizes`), trained one after another (said so). Each setting
    is logged as a plain run in ``run_dir/<label>/`` (`mtrl.sweep_grid.setting_label`; its config is the
    setting's config, so it reads and plots like any run; the checkpoints are the shard's). ``sweep.json``,
    ``sweep.md`` and ``sweep.png`` (`mtrl.sweep_results.write_sweep`) compare the settings.

    ``launcher`` ``"local"`` or ``"slurm"`` runs the unfinished shards as separate jobs through submitit (local
    processes, or a SLURM job array; ``launcher_options`` go to `submitit.AutoExecutor.update_parameters`, e.g.
    ``{"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 240}``), waits for them and collects.

    ``static`` (e.g. ``{"batch_size": (64, 128)}``, `mtrl.sweep_grid.STATIC` fields) varies settings that change
    the program: every combination gets its own shards, each setting label starting with its static values.

    A **transfer sweep** (``source`` a source run's directory, ``transfer`` a `mtrl.transfer.TransferConfig`) trains
    every setting as `mtrl.transfer.train_transfer` would (the source spliced in, the mode's optimiser and loss),
    and may also sweep the mode's ``l2sp_alpha`` or ``transfer_factor``.

    In a program across processes (`mtrl.distributed.initialize` first; ``mtrl sweep --distributed``) each shard's
    runs span every process's devices and process 0 writes the sweep's files.

    Rerunning the same sweep continues it: finished shards are reused, interrupted ones resumed from their last
    checkpoint. A directory holding another sweep is refused with the differences (``overwrite`` moves it aside).
    ``command``, the shell line that runs this sweep (``mtrl sweep`` passes its own), is kept in the plan so that
    `mtrl status` can say how to continue it.
    ``train_kwargs`` go to `mtrl.trainer.train` (checkpoints, stop_at_step, log_every, tensorboard).

    Returns the content of sweep.json (`mtrl.sweep_results.sweep_results`), or ``{"stopped_at": step, "signal":
    signum or None}`` when a shard was stopped.
    """
    from mtrl.trainer import Trainer, check_seeds

    seeds = check_seeds(seeds, distinct=True)
    if (source is None) != (transfer is None):
        raise GridError("a transfer sweep needs both source (the source run) and transfer (its TransferConfig)")
    transfer_plan = None
    if source is not None:
        from mtrl.transfer import (
            build_trainer,
            check_splice,
            load_source,
            target_config,
            target_task_list,
            warn_shared_sources,
        )

        transfer.validate().check_acts(config)
        src = load_source(source, transfer.source_step)
        all_tasks = target_task_list(transfer.mode, src.tasks, tasks)
        trainer = build_trainer(all_tasks, target_config(config, transfer, len(src.tasks), len(tasks)), transfer)
        check_splice(src, trainer, transfer)
        if transfer.mode != "scratch":
            warn_shared_sources(src, seeds)
        transfer_plan = {"source": source, "settings": dataclasses.asdict(transfer), "target_tasks": list(tasks)}
    else:
        trainer = Trainer.create(list(tasks), config)
    check_grid(grid, config, trainer.taskset.num_tasks, None if transfer is None else transfer.mode, static)
    if launcher is not None and launcher not in LAUNCHERS:
        raise GridError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher is not None and run_dir is None:
        raise GridError("a launcher needs a run_dir: its jobs write their shards there")
    if launcher is not None:
        require_submitit(launcher)
        check_launcher_options(launcher, launcher_options or {})
    if launcher == "slurm" and memory_budget is None:
        raise GridError("a SLURM sweep is planned on this machine, which cannot see its jobs' GPUs: give memory_budget "
                        "in bytes (CLI: --device-memory-gib in GiB), what JAX may use on one job's GPUs together, so "
                        "that each shard fits its job; JAX takes 75% of each card by default: for one H100 80GB, "
                        "59 GiB (memory_budget=59 * 2**30)")
    job_devices = (launcher_options or {}).get("gpus_per_node", 1) if launcher == "slurm" else None
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
        combo_trainer = trainer
        if changes and source is None:
            combo_trainer = Trainer.create(list(trainer.taskset.names), dataclasses.replace(config, **changes))
        elif changes:  # as `train_shard` builds it; its splice checked now (a torso of other sizes cannot take it)
            changed = target_config(dataclasses.replace(config, **changes), transfer, len(src.tasks), len(tasks))
            combo_trainer = build_trainer(all_tasks, changed, transfer)
            check_splice(src, combo_trainer, transfer)
        first = c * block
        for size in program_sizes(combo_trainer, block, len(seeds), max_settings_per_program, memory_budget,
                                  job_devices):
            shards.append(list(range(first, first + size)))
            first += size
    plan = {"tasks": trainer.taskset.names, "config": dataclasses.asdict(config),
            "grid": {k: list(v) for k, v in grid.items()},
            "static": {k: list(dict.fromkeys(c[k] for c in combos)) for k in (static or {})},  # typed values
            "seeds": seeds, "transfer": transfer_plan, "shards": shards, "command": command}
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
    if run_dir is not None and is_primary():
        write_sweep(run_dir, results)
    return results
