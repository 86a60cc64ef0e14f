"""A sweep's shards: the plan that cuts its settings into programs that fit the device memory, one shard's training
(`train_shard`, resumable), merging finished shards into the sweep's results (`collect`) and running shards as
submitit jobs (`launch`: local processes or a SLURM job array). See `mtrl.sweeps`.

Axes: ``E`` evaluations, ``R`` runs of a shard or of the merged sweep, ``T`` tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtrl.config import DQNConfig
from mtrl.sweep_grid import TRANSFER, GridError, per_task_overrides, plan_settings, setting_config, setting_label
from mtrl.sweep_results import sweep_results, write_sweep

PLAN_FILE = "sweep_plan.json"  # in the sweep's directory: tasks, config, grid, seeds and the settings of each shard
SHARD_FILE = "shard.json"  # in a finished shard's program directory: its evaluations and divergences
LAUNCHERS = ("local", "slurm")
JOBS_FILE = "submitted.json"  # in <run-dir>/jobs: the SLURM job id each shard was last submitted as
# A shard is resubmitted only after its last job reached one of these; any other state (queued, running, held,
# requeued, or UNKNOWN when sacct cannot answer) refuses the rerun.
SLURM_END_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                    "DEADLINE", "PREEMPTED")


def program_bytes(trainer: Any, num_runs: int) -> int:
    """Estimated device memory of a program of ``num_runs`` runs: twice the runs' state (the state itself, plus
    room for the evaluation's temporaries and the window-start copy of the train state; the replay dominates it)
    and the gradient step's activations (`update_activation_bytes`), which a conv network's small-buffer runs
    would otherwise exceed. Checked against compiled programs' `memory_analysis` (tests)."""
    import jax

    one = jax.eval_shape(trainer.init_run, jax.random.key(0), trainer.hparams, trainer.config.lr)
    state = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(one))
    return num_runs * (2 * state + update_activation_bytes(trainer))


def update_activation_bytes(trainer: Any) -> int:
    """An upper estimate of one run's gradient-step temporaries: per sampled transition (batch x tasks), the float32
    values of one pass through the network (the observation, each conv layer's 3x3 views and outputs, the dense
    widths, the Q-values) times four passes (online forward and backward on the observations; target and action
    selector on the next ones)."""
    cfg, taskset = trainer.config, trainer.taskset
    floats = int(np.prod(taskset.obs_shape))
    if cfg.conv_channels:
        height, width, channels = taskset.obs_shape[-3:]
        if cfg.adapter_size:
            floats += height * width * cfg.adapter_size
            channels = cfg.adapter_size
        for features in cfg.conv_channels:
            height, width = height - 2, width - 2
            floats += height * width * (9 * channels + features)
            channels = features
    floats += sum(cfg.torso) + taskset.num_actions
    return 4 * 4 * floats * cfg.batch_size * taskset.num_tasks


def available_bytes() -> tuple[int, int]:
    """``(total, one device)``: the free memory of all local devices together and the most that one program left
    unsharded (on one device) can use. An accelerator's free memory is its allocator limit less what is in use;
    CPU devices share the host's free RAM, so both are that."""
    import os

    import jax

    free = []
    for device in jax.local_devices():
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            ram = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            return ram, ram
        free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return sum(free), max(free)


def program_sizes(trainer: Any, num_settings: int, num_seeds: int, max_settings: int | None,
                  memory_budget: int | None, devices: int | None = None) -> list[int]:
    """How many settings (each with every seed) each program trains, in order: one program of all of them unless
    ``max_settings`` or the memory (``memory_budget``: bytes over all devices, split evenly between them; default
    `available_bytes`; 80% of it is used) says fewer; said so when the grid is split. ``devices``: how many devices
    a program will have (a SLURM job's GPUs); default this process's.

    On several devices a program's runs are sharded over them only when they divide evenly
    (`mtrl.trainer.shards_runs`); any other program sits on one device and must fit there. So a split grid takes
    the largest count of settings whose runs shard evenly and fit all devices' memory, and what is left that cannot
    shard goes into programs that fit one device's."""
    import jax

    from mtrl.trainer import shards_runs

    if max_settings is not None and max_settings < 1:
        raise GridError(f"max_settings_per_program must be >= 1, got {max_settings}")
    devices = devices or len(jax.devices())
    total, single = available_bytes() if memory_budget is None else (memory_budget, memory_budget // devices)
    budget, one_device = int(0.8 * total), int(0.8 * single)
    one_setting = program_bytes(trainer, num_seeds)
    fit_sharded, fit_one_device = budget // one_setting, one_device // one_setting
    allowed = min(num_settings, max_settings or num_settings)
    sizes, left = [], num_settings
    while left:
        most = min(left, allowed, fit_sharded)
        size = most if devices == 1 else next(
            (n for n in range(most, 0, -1) if shards_runs(n * num_seeds, devices)), 0)
        if size < 1:  # cannot shard evenly: one device holds the program
            size = min(left, allowed, fit_one_device)
        if size < 1:
            where = "one device" if devices > 1 and fit_sharded >= 1 else "the devices"
            room = one_device if where == "one device" else budget
            raise GridError(f"one setting x {num_seeds} seeds needs about {one_setting / 2**30:.2f} GiB of device "
                            f"memory, {room / 2**30:.2f} GiB are available on {where}: use fewer seeds, a seed "
                            "count that divides over the devices, or a smaller buffer_size")
        sizes.append(size)
        left -= size
    if len(sizes) > 1:
        why = []
        if fit_sharded < num_settings:
            why.append(f"about {one_setting * num_settings / 2**30:.2f} GiB for all {num_settings} settings, "
                       f"{budget / 2**30:.2f} GiB available")
        if allowed < num_settings:
            why.append(f"max_settings_per_program {allowed}")
        if devices > 1:
            why.append(f"a program shards its runs over the {devices} devices when its runs (settings x seeds) are "
                       f"a multiple of {devices}, else it sits on one device ({one_device / 2**30:.2f} GiB available)")
        print(f"sweep: {num_settings} settings x {num_seeds} seeds split into {len(sizes)} programs of "
              f"{_counted(sizes)} settings ({'; '.join(why)}), trained one after another or as separate jobs")
    return sizes


def check_fits(trainer: Any, index: int, num_runs: int, key_impl: str | None = None) -> None:
    """Refuse, before compiling, shard ``index`` (``num_runs`` runs) when its program's estimated memory exceeds what
    the devices of this job have free: the sweep was planned on another machine (a SLURM login node, against the
    memory given for the jobs), and a wrong figure there must end in this message, not an out-of-memory crash.
    ``key_impl``: the key implementation of a shard being resumed (`mtrl.checkpoint.Checkpointer.key_impl`), which
    decides whether its runs can be sharded (`mtrl.trainer.Trainer.placement`)."""
    import dataclasses

    total, single = available_bytes()
    sharded = dataclasses.replace(trainer, key_impl=key_impl).placement(num_runs)[0] is not None
    room, need = (total if sharded else single), program_bytes(trainer, num_runs)
    if need > room:
        raise GridError(f"shard {index}: its {num_runs} runs need about {need / 2**30:.2f} GiB of device memory, "
                        f"this job's {'devices have' if sharded else 'device has'} {room / 2**30:.2f} GiB free: the "
                        "sweep was planned for more memory than its jobs have; plan it again into a new run dir "
                        "with the jobs' real memory (--device-memory-gib; memory_budget=) or fewer settings per "
                        "program (--max-settings-per-program)")


def _counted(sizes: list[int]) -> str:
    """``[4, 4, 1]`` -> ``"4, 4 and 1"``."""
    words = [str(s) for s in sizes]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def load_plan(run_dir: str) -> dict[str, Any]:
    """The plan (`PLAN_FILE`) of the sweep in ``run_dir``; FileNotFoundError naming it when there is none."""
    import json
    import os

    path = os.path.join(run_dir, PLAN_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} holds no sweep ({PLAN_FILE} is missing)")
    with open(path) as f:
        return json.load(f)


def claim_sweep_dir(run_dir: str, plan: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """Write ``plan`` to ``run_dir`` or return the plan of the same sweep already there (its shards are kept, so a
    rerun continues them); a directory holding another sweep or run is refused, or with ``overwrite`` moved aside.
    In a program across processes (`mtrl.distributed`) process 0 claims and the others read what it wrote."""
    from mtrl.distributed import barrier, is_primary

    if not is_primary():
        barrier("mtrl sweep plan")
        return load_plan(run_dir)
    claimed = _claim_sweep_dir(run_dir, plan, overwrite)
    barrier("mtrl sweep plan")
    return claimed


def _claim_sweep_dir(run_dir: str, plan: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    import os

    from mtrl.logger import write_json
    from mtrl.provenance import ProvenanceMismatchError, identity_differences, move_aside

    path = os.path.join(run_dir, PLAN_FILE)
    if os.path.exists(path) and not overwrite:
        saved = load_plan(run_dir)
        keys = ("tasks", "config", "grid", "static", "seeds", "transfer")
        # a plan saved before a config field existed ran without it (`FIELDS_ADDED_LATER`)
        comparable = {**saved, "config": DQNConfig.with_defaults(saved.get("config"))}
        problems = identity_differences(comparable, {k: plan[k] for k in keys})
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
                trainer: Any = None, check_memory: bool = False, **train_kwargs) -> dict[str, Any]:
    """Train shard ``index`` of ``plan`` (one program: its settings x the seeds) into ``run_dir/shards/<index>``,
    or continue it: a finished shard's ``shard.json`` is read back, an interrupted one resumed (``check_memory``: a
    job first checks the program fits its devices, `check_fits`). Returns the shard's
    content (its settings, evaluation steps, returns ``[E, R, T]`` and divergences by run), also written to
    shard.json, or ``{"stopped_at": ..., "signal": ...}``."""
    import json
    import os

    import jax
    import jax.numpy as jnp

    from mtrl.agent import default_hparams
    from mtrl.distributed import barrier, is_primary
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
    resume, status = False, "empty"
    if program_dir is not None:
        if os.path.exists(os.path.join(program_dir, SHARD_FILE)):
            with open(os.path.join(program_dir, SHARD_FILE)) as f:
                return json.load(f)
        status = run_status(program_dir)
        if status == "started" and is_primary():  # stopped before its first checkpoint: nothing to resume
            move_aside(program_dir)
        resume = status in ("interrupted", "finished")
    if check_memory and status != "finished":  # a finished shard trains nothing: it needs no memory
        key_impl = None
        if status == "interrupted":
            from mtrl.checkpoint import Checkpointer

            checkpoints = Checkpointer(program_dir, read_only=True)
            try:
                key_impl = checkpoints.key_impl()
            finally:
                checkpoints.close()
        check_fits(trainer, index, len(mine) * len(seeds), key_impl)
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
        if directory is not None and not resume and os.path.exists(directory) and is_primary():
            move_aside(directory)  # rows of an attempt that never reached a checkpoint: not mixed with this one
        groups.append(RunGroup(label, tuple(range(len(run_seeds), len(run_seeds) + len(seeds))), setting_cfg,
                               metadata, directory=directory))
        run_seeds += seeds
        hparams += [hp] * len(seeds)
        learning_rates += [setting_cfg.lr] * len(seeds)
    barrier("mtrl sweep shard directories")  # every process starts from the same directories
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
    if program_dir is not None and is_primary():
        write_json(os.path.join(program_dir, SHARD_FILE), content)
    return content


def merge_shards(plan: Mapping[str, Any], contents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sweep's results (`sweep_results`, plus ``programs``: the shards) from its shards' contents, settings in
    grid order."""
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
    results = sweep_results(settings, plan["tasks"], list(plan["seeds"]), np.asarray(steps),
                            np.stack(returns, axis=1), diverged,
                            eval_epsilon=DQNConfig.with_defaults(plan["config"])["eval_epsilon"])
    return {**results, "programs": len(contents)}


def collect(run_dir: str) -> dict[str, Any]:
    """Merge the finished shards of the sweep in ``run_dir`` into sweep.json, sweep.md and sweep.png (also done
    when a sweep finishes); unfinished shards are named and nothing is written."""
    results = merge_shards_in(run_dir)
    write_sweep(run_dir, results)
    return results


def merge_shards_in(run_dir: str) -> dict[str, Any]:
    """`merge_shards` of the plan and finished shard files in ``run_dir`` (what `collect` writes); unfinished shards
    are named (ValueError)."""
    import json
    import os

    plan = load_plan(run_dir)
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
    return merge_shards(plan, contents)


def _shard_job(run_dir: str, index: int, train_kwargs: dict) -> int:
    """One launcher job: shard ``index`` of the sweep in ``run_dir`` (a module-level function, so submitit can
    pickle it). The job that finds every shard finished afterwards collects the sweep, so its results are written
    even when the process that submitted the jobs is gone (a login session that ended)."""
    import fcntl
    import os

    plan = load_plan(run_dir)
    content = train_shard(plan, index, run_dir, progress=False, check_memory=True, **train_kwargs)
    if "stopped_at" in content:
        raise RuntimeError(f"shard {index} stopped at {content['stopped_at']:,} env steps per task; rerun the sweep "
                           "to resume it")
    finished = [os.path.exists(os.path.join(run_dir, "shards", str(i), SHARD_FILE)) for i in range(len(plan["shards"]))]
    if all(finished):
        os.makedirs(os.path.join(run_dir, "jobs"), exist_ok=True)
        with open(os.path.join(run_dir, "jobs", "collect.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two last jobs finishing together write the same files in turn
            collect(run_dir)
    return index


def require_submitit(launcher: str = "local") -> None:
    """Fail early, before anything is built, when a launcher is asked for without submitit installed, or SLURM's
    from a machine without SLURM's commands."""
    import shutil

    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ImportError("launchers run shards through submitit: pip install 'mtrl-jax[cluster]'") from None
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None] if launcher == "slurm" else []
    if missing:
        names = " and ".join(missing) + (" are" if len(missing) > 1 else " is")
        raise ValueError(f"--launcher slurm submits through SLURM, but {names} not on PATH: run the sweep from the "
                         "cluster's login node (or --launcher local on this machine)")


def check_launcher_options(launcher: str, options: Mapping[str, Any]) -> None:
    """Refuse, before anything is written, job settings submitit does not know (``slurm_<name>`` are sbatch's:
    account, qos, constraint, cpus_per_task, mem, array_parallelism, ...), naming the one it refused."""
    import re
    import tempfile

    import submitit

    with tempfile.TemporaryDirectory() as folder:
        try:
            submitit.AutoExecutor(folder=folder, cluster="local").update_parameters(**options)
        except NameError as e:
            # submitit names it "... in parameter 'slurm_x'" or "Parameter 'x' need to be prefixed ..."
            named = re.search(r"[pP]arameter '([^']+)'", str(e))
            unknown = named.group(1) if named else "?"
            known = str(e).split("Valid arguments: ")[-1].split("\n")[0]
            raise GridError(f"{launcher} launcher: unknown job setting {unknown!r}"
                            + (f"; sbatch settings submitit knows: {known}" if unknown.startswith("slurm_") else "")
                            ) from None


def launch(run_dir: str, launcher: str, options: Mapping[str, Any], **train_kwargs) -> dict[str, Any]:
    """Run the unfinished shards of the sweep in ``run_dir`` as submitit jobs (``launcher`` "local": processes on
    this machine; "slurm": one SLURM job array), wait for them, and return the merged results: the job that finished
    the last shard has written them (`_shard_job`); with no shard left to train, `collect` writes them."""
    import os

    import submitit

    plan = load_plan(run_dir)
    pending = [i for i in range(len(plan["shards"]))
               if not os.path.exists(os.path.join(run_dir, "shards", str(i), SHARD_FILE))]
    if pending:
        if launcher == "slurm":
            _refuse_shards_still_queued(run_dir, pending)
        executor = submitit.AutoExecutor(folder=os.path.join(run_dir, "jobs", "%j"), cluster=launcher)
        executor.update_parameters(**{"timeout_min": 24 * 60, "name": "mtrl-sweep", **options})
        jobs = executor.map_array(_shard_job, [run_dir] * len(pending), pending, [train_kwargs] * len(pending))
        if launcher == "slurm":
            _record_jobs(run_dir, {shard: job.job_id for shard, job in zip(pending, jobs)})
        print(f"sweep: {len(jobs)} shard job(s) submitted ({launcher}): {', '.join(j.job_id for j in jobs)}; logs in "
              f"{run_dir}/jobs/")
        for job in jobs:
            job.result()  # raises with the job's traceback if a shard failed
        return merge_shards_in(run_dir)
    return collect(run_dir)


def _record_jobs(run_dir: str, job_ids: Mapping[int, str]) -> None:
    """Add the SLURM job ids of newly submitted shards to ``<run_dir>/jobs/submitted.json``."""
    import json
    import os

    path = os.path.join(run_dir, "jobs", JOBS_FILE)
    recorded = {}
    if os.path.exists(path):
        with open(path) as f:
            recorded = json.load(f)
    recorded.update({str(shard): job_id for shard, job_id in job_ids.items()})
    with open(path, "w") as f:
        json.dump(recorded, f, indent=1)


def _refuse_shards_still_queued(run_dir: str, pending: Sequence[int]) -> None:
    """A rerun (say, after the submitting shell was lost) must not submit a shard whose earlier job may still run:
    two jobs would train into the same shard directory. Asks SLURM (sacct, through submitit) about each unfinished
    shard's last job and raises naming those not known to have ended (queued, running, held, or unknown)."""
    import json
    import os

    import submitit

    path = os.path.join(run_dir, "jobs", JOBS_FILE)
    if not os.path.exists(path):
        return
    with open(path) as f:
        recorded = json.load(f)
    submitit.SlurmJob.watcher.clear()  # states cached by this process's earlier waits may be stale
    jobs = {shard: submitit.SlurmJob(folder=os.path.join(run_dir, "jobs", "%j"), job_id=recorded[str(shard)])
            for shard in pending if str(shard) in recorded}
    states = {shard: job.state for shard, job in jobs.items()}  # one sacct call for all of them
    active = [f"shard {shard} (job {jobs[shard].job_id}, {state})" for shard, state in states.items()
              if state.split(" ")[0] not in SLURM_END_STATES]
    if active:
        raise ValueError(f"{run_dir}: {', '.join(active)} may still run in SLURM, so nothing was submitted; wait for "
                         f"it (`python -m mtrl sweep --collect {run_dir}` merges finished shards) or "
                         "scancel it, then rerun the sweep to resume its shard")
