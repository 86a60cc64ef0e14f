"""Command line: ``python -m mtrl train|transfer|study|sweep|evaluate|render|plot|compare|status``
(tyro; ``--help`` on each lists every option with its default).

Commands are dataclasses whose `run` calls the library; no training logic lives here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import shlex
import sys
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import tyro

from mtrl.config import EMPTY_BY_DEFAULT, ConfigError, ConfigWarning, DQNConfig
from mtrl.transfer_config import MODES, TransferConfig, TransferSettings


@dataclasses.dataclass
class RunOptions:
    """Options every training command shares."""

    seeds: int = 1
    """number of seeds (runs) trained together"""
    seed: int = 0
    """first seed; runs use seed, seed+1, ..."""
    run_dir: str | None = None
    """output directory (default runs/<command>/<timestamp>)"""
    checkpoint_every: int = 50_000
    """env steps per task between checkpoints (0 = only at the end; each at the first evaluation at or after a
    multiple, as checkpoints are written between compiled chunks); `train --resume` keeps the run's own unless given"""
    keep_checkpoints: int = 3
    """checkpoints kept (`train --resume` keeps the run's own unless given)"""
    log_every: int = 1_000
    """env steps per task between training-metric records (metrics.jsonl, TensorBoard); moved (at most 2.5x) to divide
    the evaluation chunk, and at most --eval-every"""
    stop_at_step: int | None = None
    """save and stop at the first evaluation (every --eval-every env steps per task) at or after this many env steps
    per task (continue a run later with `mtrl train --resume DIR`, a sweep or study by rerunning its command without
    --stop-at-step)"""
    overwrite: bool = False
    """if --run-dir already holds a run, move it aside (to <run-dir>.replaced-<time>) instead of refusing"""
    tensorboard: bool = False
    """also write TensorBoard events (needs the tensorboard extra)"""
    distributed: bool = False
    """one program across several processes (jax.distributed; on SLURM the rest is detected): the runs are sharded
    over every process's devices, process 0 writes the files"""
    coordinator: str | None = None
    """--distributed outside a cluster jax detects: the coordinator's host:port (process 0's)"""
    num_processes: int | None = None
    """--distributed outside a detected cluster: how many processes"""
    process_id: int | None = None
    """--distributed outside a detected cluster: this process's index (0 writes the files)"""
    wandb: bool = False
    """also track the run in Weights & Biases (needs the wandb extra; WANDB_MODE=offline works without an account)"""
    wandb_project: str = "mtrl"
    """W&B project"""
    wandb_entity: str | None = None
    """W&B entity (team or user; default: yours)"""
    progress: bool = True
    """show a progress bar"""

    def seed_list(self) -> list[int]:
        from mtrl.trainer import seed_flags_error

        error = seed_flags_error(self.seed, self.seeds)
        if error:
            raise ValueError(error)
        return list(range(self.seed, self.seed + self.seeds))

    def train_kwargs(self) -> dict:
        """`train` keyword arguments; checks the options (and that TensorBoard is installed when asked for)
        before anything is built."""
        from mtrl.trainer import CheckpointOptions, check_stop_at_step

        if self.tensorboard:
            from mtrl.logger import require_tensorboard

            require_tensorboard()
        if self.log_every < 1:
            raise ValueError(f"--log-every must be a positive number of env steps per task, got {self.log_every}")
        checkpoints = CheckpointOptions(every=self.checkpoint_every, keep=self.keep_checkpoints).validate()
        check_stop_at_step(self.stop_at_step)
        kwargs = {"progress": self.progress, "tensorboard": self.tensorboard, "checkpoints": checkpoints,
                  "stop_at_step": self.stop_at_step, "overwrite": self.overwrite, "log_every": self.log_every}
        if self.wandb:
            from mtrl.tracking import WandbOptions, require_wandb

            require_wandb()
            kwargs["wandb"] = WandbOptions(project=self.wandb_project, entity=self.wandb_entity)
        return kwargs


def _report(result, run_dir: str) -> None:
    from mtrl.logger import summary_markdown

    if result.already_complete:
        return  # `train` said so; nothing was trained
    if result.stopped_at is not None:
        return _stopped("", "", result.stopped_at, result.signal, run_dir,
                        resume_command=f"python -m mtrl train --resume {run_dir}")
    print(summary_markdown(result.summary))
    print(f"run directory: {run_dir}")


def _stopped(what: str, where: str, stopped_at: int, signal: int | None, run_dir: str,
             resume_command: str | None = None) -> None:
    """Say that a run (``what`` "") or a sweep or study stopped (checkpoint saved) and how to continue it: with
    ``resume_command``, else by rerunning its command; after a signal, exit with its status (128 + signal)."""
    why = f"signal {signal}" if signal else "--stop-at-step"
    head = " ".join(filter(None, (what, "stopped by", why, where, f"at {stopped_at:,} env steps per task")))
    again = (f": {resume_command}" if resume_command else
             " the same command" + ("" if signal else " without --stop-at-step (or with a later step)")
             + f" and --run-dir {run_dir}")
    print(f"{head}; checkpoint saved.\ncontinue with{again}")
    if signal:
        raise SystemExit(128 + signal)


@dataclasses.dataclass
class Train:
    """Train one multi-task DQN per seed on a task set, all seeds in one compiled program."""

    tasks: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """task specs ENV_ID[:field=value,...], e.g. CartPole-v1:length=1.0 Acrobot-v1"""
    suite: str | None = None
    """a named suite instead of --tasks (cartpole-lengths, classic, cartpole-gravity, minatar)"""
    resume: str | None = None
    """continue this run directory from its latest checkpoint (tasks, seeds and config come from it)"""
    run_options: Annotated[RunOptions, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=RunOptions)
    config: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=DQNConfig)

    def task_specs(self) -> list[str]:
        from mtrl.tasks import suite

        if bool(self.tasks) == bool(self.suite):
            raise ValueError("give exactly one of --tasks SPEC [SPEC ...] or --suite NAME")
        return list(self.tasks) if self.tasks else list(suite(self.suite))

    def run_resume(self) -> None:
        from mtrl.transfer import resume_run, run_metadata

        if self.tasks or self.suite:
            raise ValueError("--resume takes tasks, seeds and config from the run directory; drop --tasks/--suite")
        if self.run_options.run_dir is not None and (os.path.realpath(self.run_options.run_dir)
                                                     != os.path.realpath(self.resume)):
            raise ValueError(f"--run-dir: a resume continues in its own directory ({self.resume}); drop --run-dir")
        meta = run_metadata(self.resume)
        saved = DQNConfig.from_dict(meta["config"])
        options = self.run_options
        if (options.seeds, options.seed) != (RunOptions.seeds, RunOptions.seed):  # given: must be the run's own
            asked = options.seed_list()
            if asked != list(meta["seeds"]):
                raise ValueError(f"--seeds/--seed: the run in {self.resume} trains seeds {meta['seeds']}, not "
                                 f"{asked}; a resume continues the run's own seeds (drop --seeds/--seed)")
        defaults = DQNConfig()
        # Options given on the command line (those not at their default) must agree with the checkpoint.
        given = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(DQNConfig)
                 if getattr(self.config, f.name) != getattr(defaults, f.name)}
        kwargs = self.run_options.train_kwargs()
        if kwargs.pop("overwrite"):
            raise ValueError("--overwrite starts a new run; it cannot be combined with --resume")
        result = resume_run(self.resume, config=dataclasses.replace(saved, **given), **kwargs)
        _report(result, self.resume)

    def run(self) -> None:
        if self.resume:
            return self.run_resume()
        from mtrl.logger import default_run_dir
        from mtrl.tasks import make_taskset
        from mtrl.trainer import train

        seeds = self.run_options.seed_list()
        taskset = make_taskset(self.task_specs(), self.config.protocol)
        self.config.validate(taskset.num_tasks)
        run_dir = self.run_options.run_dir or default_run_dir("train")
        result = train(taskset, self.config, seeds=seeds, run_dir=run_dir,
                       extra_metadata={"command": command_line(), "suite": self.suite},
                       **self.run_options.train_kwargs())
        _report(result, run_dir)


@dataclasses.dataclass
class Transfer:
    """Train target tasks starting from a source run's checkpoint (splice its torso; see --mode)."""

    source: str
    """run directory of the pretrained source run (it must hold checkpoints; or a sweep's setting directory)"""
    tasks: tuple[str, ...]
    """target task specs"""
    transfer: Annotated[TransferConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=TransferConfig)
    run_options: Annotated[RunOptions, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=RunOptions)
    config: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=DQNConfig)

    def run(self) -> None:
        from mtrl.logger import default_run_dir
        from mtrl.tasks import make_taskset
        from mtrl.transfer import train_transfer

        seeds = self.run_options.seed_list()
        self.transfer.validate()
        self.config.validate(make_taskset(self.tasks, self.config.protocol).num_tasks)
        run_dir = self.run_options.run_dir or default_run_dir("transfer")
        result = train_transfer(self.source, self.tasks, self.transfer, self.config, seeds=seeds, run_dir=run_dir,
                                extra_metadata={"command": command_line()}, **self.run_options.train_kwargs())
        _report(result, run_dir)


@dataclasses.dataclass
class Study:
    """`study transfer`: every transfer mode on the same target tasks and seeds, compared with scratch;
    writes transfer.json, transfer.md and transfer_curves.png (rerunning continues an unfinished study)."""

    kind: tyro.conf.Positional[Literal["transfer"]]
    """the study to run"""
    source: str
    """run directory of the pretrained source run (it must hold checkpoints; or a sweep's setting directory)"""
    tasks: tuple[str, ...]
    """target task specs"""
    modes: tuple[str, ...] = MODES
    """transfer modes to compare (scratch is always run)"""
    threshold: float = 0.95
    """normalised return that counts as reaching the target (time to threshold)"""
    last_k: int = 3
    """evaluations averaged for the final gain over scratch"""
    rerun: bool = False
    """retrain a mode whose run in the study directory was trained with other settings (it is moved aside)"""
    reference: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """reference returns SPEC=RETURN for target specs without a known one (e.g. changed episode limits)"""
    transfer: Annotated[TransferSettings, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=TransferSettings)
    run_options: Annotated[RunOptions, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=RunOptions)
    config: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=DQNConfig)

    def run(self) -> None:
        from mtrl.logger import default_run_dir
        from mtrl.study import StudyStopped, study_markdown, transfer_study

        run_dir = self.run_options.run_dir or default_run_dir("study_transfer")
        kwargs = self.run_options.train_kwargs()
        if kwargs.pop("overwrite"):
            raise ValueError("study reuses finished modes; to retrain those trained with other settings use --rerun")
        references = {}
        for item in self.reference:
            spec, eq, value = item.rpartition("=")
            if spec in references:
                raise ValueError(f"--reference gives {spec!r} twice; give each target one return")
            try:
                references[spec] = float(value)
            except ValueError:
                spec = ""
            if not eq or not spec:
                raise ValueError(f"--reference takes SPEC=RETURN, e.g. Acrobot-v1:max_steps_in_episode=1000=-90; "
                                 f"got {item!r}")
        try:
            study = transfer_study(self.source, self.tasks, self.modes, self.transfer, self.config,
                                   seeds=self.run_options.seed_list(), run_dir=run_dir, threshold=self.threshold,
                                   last_k=self.last_k, rerun=self.rerun, references=references, **kwargs)
        except StudyStopped as stop:
            _stopped("study", f"in mode {stop.mode}", stop.stopped_at, stop.signal, run_dir)
            return
        print(study_markdown(study))
        print(f"study directory: {run_dir}")


# sbatch settings with a flag of their own: --slurm may not set them too (the plan reads the GPUs per job)
SLURM_OWN_FLAGS = {"partition": "--slurm-partition", "gpus_per_node": "--gpus-per-job", "gpus_per_task":
                   "--gpus-per-job", "num_gpus": "--gpus-per-job", "gres": "--gpus-per-job", "time": "--timeout-min",
                   "job_name": "(mtrl-sweep)"}


def slurm_settings(items: Sequence[str]) -> dict[str, Any]:
    """``["account=lab", "cpus_per_task=8", "exclusive"]`` -> ``{"slurm_account": "lab", "slurm_cpus_per_task": 8,
    "slurm_exclusive": True}``: integers without a leading zero as numbers, a bare NAME (or true/false) as a
    switch; submitit checks the names (`mtrl.sweep_shards.check_launcher_options`)."""
    settings: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip().replace("-", "_"), value.strip()
        if not name or (sep and not value):
            raise ValueError(f"--slurm: {item!r} is not NAME=VALUE or NAME (e.g. account=lab, cpus_per_task=8, "
                             "exclusive)")
        if name in SLURM_OWN_FLAGS:
            raise ValueError(f"--slurm: {name} is set by {SLURM_OWN_FLAGS[name]}, not --slurm")
        if not sep or value.lower() in ("true", "false"):
            settings[f"slurm_{name}"] = not sep or value.lower() == "true"
        elif value.isdecimal() and (value == "0" or not value.startswith("0")):
            settings[f"slurm_{name}"] = int(value)
        else:
            settings[f"slurm_{name}"] = value
    return settings


@dataclasses.dataclass
class Sweep:
    """Train a grid of numeric settings x seeds in one compiled program (or several, when it does not fit in memory
    or is spread over jobs) and compare the settings (sweep.md)."""

    grid: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """NAME=V1,V2,... per setting, e.g. lr=1e-4,3e-4 gamma=0.99,0.995 gamma.1=0.9,0.99 (numeric per-run settings:
    lr, gamma, eps_start, eps_end, eps_decay, tau, popart_step_size; per task by index: gamma.<t>, eps_start.<t>,
    eps_end.<t>, eps_decay.<t>, task_weight.<t>)"""
    static: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """NAME=V1,V2,... of settings that change the program (num_envs, buffer_size, batch_size, learning_starts,
    update_every, target_update_period, n_step, lr_end_fraction, max_grad_norm, huber_delta, adapter_size,
    eval_episodes; layer sizes torso, conv_channels as widths joined by x: torso=64x64,256): each combination gets
    programs (shards) of its own; without --grid, only these vary"""
    tasks: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """task specs ENV_ID[:field=value,...]"""
    suite: str | None = None
    """a named suite instead of --tasks (cartpole-lengths, classic, cartpole-gravity, minatar)"""
    max_settings_per_program: int | None = None
    """at most this many settings (each with every seed) per program (shard); default: as many as fit in memory"""
    launcher: Literal["local", "slurm"] | None = None
    """run the shards as submitit jobs: local processes (all at once, on the CPU: submitit hides GPUs from local jobs),
    or one SLURM job array (needs the cluster extra); on one GPU machine, run without a launcher"""
    slurm_partition: str | None = None
    """SLURM partition of the shard jobs"""
    gpus_per_job: int = 1
    """GPUs per shard job (--launcher slurm)"""
    slurm: Annotated[tuple[str, ...], EMPTY_BY_DEFAULT] = ()
    """more sbatch settings of the shard jobs as NAME=VALUE (submitit's slurm_NAME), e.g. account=lab qos=normal
    constraint=a100 cpus_per_task=8 mem=64G array_parallelism=16"""
    device_memory_gib: float | None = None
    """device memory one program (shard) may use, GiB over all its devices; default: what this machine's devices
    have free. Needed with --launcher slurm (the login node cannot see the jobs' GPUs): what JAX may use on one
    job's GPUs together, by default 75% of each card (XLA_PYTHON_CLIENT_MEM_FRACTION), e.g. 59 for one H100 80GB"""
    timeout_min: int = 24 * 60
    """time limit of each shard job, minutes"""
    collect: str | None = None
    """a sweep's directory: only merge its finished shards into sweep.json/md/png there (done anyway when a sweep
    finishes)"""
    source: str | None = None
    """a source run: a transfer sweep, every setting trained as `mtrl transfer --mode ...` would (the grid may then
    also hold l2sp_alpha in mode l2sp, transfer_factor in mode joint)"""
    transfer: Annotated[TransferConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(
        default_factory=TransferConfig)
    run_options: Annotated[RunOptions, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=RunOptions)
    config: Annotated[DQNConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=DQNConfig)

    def run(self) -> None:
        from mtrl.logger import default_run_dir
        from mtrl.sweep_grid import check_grid, parse_grid
        from mtrl.sweep_results import sweep_markdown
        from mtrl.sweep_shards import collect, require_submitit
        from mtrl.sweeps import sweep
        from mtrl.tasks import make_taskset

        if self.source is None and self.transfer != TransferConfig():
            raise ValueError("--mode and the other transfer options need --source (the source run)")
        if self.collect is not None:
            print(sweep_markdown(collect(self.collect)))
            return
        specs = Train(tasks=self.tasks, suite=self.suite).task_specs()
        grid = parse_grid(self.grid)
        static = parse_grid(self.static, "--static") if self.static else None
        num_tasks = make_taskset(specs, self.config.protocol).num_tasks
        self.config.validate(num_tasks)
        if self.source is None:  # a transfer sweep's grid is checked once its tasks are known (source's included)
            check_grid(grid, self.config, num_tasks, static=static)
        options = {"timeout_min": self.timeout_min}
        if self.launcher is not None:
            require_submitit(self.launcher)
            if self.launcher == "slurm":
                options.update(gpus_per_node=self.gpus_per_job,
                               **({"slurm_partition": self.slurm_partition} if self.slurm_partition else {}),
                               **slurm_settings(self.slurm))
        if self.slurm and self.launcher != "slurm":
            raise ValueError("--slurm sets the jobs of --launcher slurm; add --launcher slurm or leave it out")
        if self.device_memory_gib is not None and not 0 < self.device_memory_gib < math.inf:
            raise ValueError(f"--device-memory-gib must be a number of GiB > 0, got {self.device_memory_gib:g}")
        run_dir = self.run_options.run_dir or default_run_dir("sweep")
        kwargs = self.run_options.train_kwargs()
        results = sweep(specs, self.config, grid, self.run_options.seed_list(), run_dir,
                        max_settings_per_program=self.max_settings_per_program, launcher=self.launcher,
                        memory_budget=None if self.device_memory_gib is None else int(self.device_memory_gib * 2**30),
                        launcher_options=options, source=self.source,
                        transfer=None if self.source is None else self.transfer,
                        static=static, command=command_line(drop=NOT_RERUN, run_dir=run_dir), **kwargs)
        if "stopped_at" in results:
            _stopped("sweep", "", results["stopped_at"], results["signal"], run_dir)
            return
        print(sweep_markdown(results))
        print(f"sweep directory: {run_dir} (one run directory per setting; sweep.json, sweep.md, sweep.png)")


@dataclasses.dataclass
class Plot:
    """Redraw curves.png of a run directory from its eval.csv."""

    run_dir: tyro.conf.Positional[str]
    """a directory written by `mtrl train`"""

    def run(self) -> None:
        from mtrl.plots import plot_run_dir

        print(plot_run_dir(self.run_dir))


@dataclasses.dataclass
class Compare:
    """Compare runs' evaluation curves: compare.png (a panel per task, a line per variant), compare.md and
    compare.json (per task: IQM and 95% interval at the last step all reached, P(better than the first))."""

    runs: Annotated[tuple[str, ...], tyro.conf.Positional,
                    tyro.conf.arg(metavar="RUN [RUN ...]", help_behavior_hint="")]
    """run directories: DIR (labelled by its name) or LABEL=DIR; repeat a LABEL, or give LABEL='PATTERN' (quoted),
    to put several runs in one variant, e.g. multi=runs/five single='runs/single/*'"""
    out: str = "."
    """directory for compare.png, compare.md and compare.json"""
    step: int | None = None
    """compare every task at this evaluation step, which every variant evaluated (env steps per task; default: per
    task, the last step every variant reached)"""
    tasks: Annotated[tuple[str, ...], tyro.conf.arg(help_behavior_hint="(default: all)")] = ()
    """only these tasks"""

    def run(self) -> None:
        from mtrl.compare import compare_runs, comparison_markdown

        result = compare_runs(self.runs, self.out, self.step, self.tasks)
        print(comparison_markdown(result))
        print(f"written: {', '.join(os.path.join(self.out, f'compare.{ext}') for ext in ('png', 'md', 'json'))}")


@dataclasses.dataclass
class Status:
    """Where a run stands: finished or not, steps, checkpoints, speed and time left, last evaluation, how to
    continue it; for a directory of runs (a study, a sweep, an experiment's), one line per run."""

    path: tyro.conf.Positional[str]
    """a run directory, or a directory holding runs"""
    json: bool = False
    """print the status as JSON (one object per run) instead"""

    def run(self) -> None:
        import json

        from mtrl.status import is_run_dir, overview_text, run_status, status_text, statuses_under

        if not os.path.isdir(self.path):
            raise ValueError(f"{self.path!r} is not a directory")
        if is_run_dir(self.path):
            status = run_status(self.path)
            print(json.dumps(status, indent=2) if self.json else status_text(status))
            return
        statuses = statuses_under(self.path)
        if not statuses:
            raise ValueError(f"{self.path!r} holds no run (no config.json naming tasks here or in its subdirectories)")
        print(json.dumps(statuses, indent=2) if self.json else overview_text(self.path, statuses))


@dataclasses.dataclass
class Evaluate:
    """Evaluate a run's policy (every task and seed in one program); writes evaluation.json and .md."""

    run_dir: tyro.conf.Positional[str]
    """a run directory with checkpoints (plain or transfer), or a sweep's setting directory"""
    episodes: int | None = None
    """episodes per task and seed (default: the run's eval_episodes, which reproduces its evaluation)"""
    step: int | None = None
    """checkpoint (env steps per task; default: the latest)"""
    tasks: Annotated[tuple[str, ...], tyro.conf.arg(help_behavior_hint="(default: all)")] = ()
    """only these of the run's tasks"""
    epsilon: float | None = None
    """probability of a uniformly random valid action at each step (0 = greedy; default: the run's eval_epsilon,
    which reproduces its evaluation)"""
    out: str | None = None
    """directory for evaluation.json and evaluation.md (default: the run directory, replacing an earlier
    evaluation's)"""

    def run(self) -> None:
        from mtrl.policy import evaluate_run

        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")
        if self.epsilon is not None and not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"--epsilon must be in [0, 1] (0 = greedy), got {self.epsilon}")
        result = evaluate_run(self.run_dir, self.episodes, self.step, self.tasks, epsilon=self.epsilon, out=self.out)
        print(result["markdown"])
        print(f"written: {os.path.join(self.out or self.run_dir, 'evaluation.json')}, evaluation.md")


@dataclasses.dataclass
class Render:
    """Play one episode of each task with a run's policy and write each as an animated GIF (MinAtar and other grid
    games, CartPole, Acrobot, MountainCar)."""

    run_dir: tyro.conf.Positional[str]
    """a run directory with checkpoints (plain or transfer), or a sweep's setting directory"""
    tasks: Annotated[tuple[str, ...], tyro.conf.arg(help_behavior_hint="(default: all the run's that can be drawn)")
                     ] = ()
    """the tasks to play: the run's, or (one, with --head) another whose observations and actions match the head's"""
    head: str | None = None
    """the run's task whose head acts (default: each task's own)"""
    seed: int | None = None
    """which of the run's seeds acts (default: its first)"""
    step: int | None = None
    """checkpoint (env steps per task; default: the latest)"""
    epsilon: float = 0.0
    """probability of a uniformly random valid action at each step (0 = greedy)"""
    episode_seed: int = 0
    """seed of the episode's key (reset, env steps, ε draws)"""
    max_steps: int | None = None
    """the most steps recorded; a longer episode is cut there (default: the task's episode limit, at most 2500)"""
    fps: float | None = None
    """frames per second, at most 50 (default: 10 for grid games, 30 for classic control)"""
    tile: bool = False
    """one GIF of the tasks side by side, each playing its own episode (default: one GIF per task)"""
    out: str | None = None
    """a directory for the GIFs (created when missing), or with one task or --tile the .gif's path (default: the
    run directory; files episode_<task>_seed<seed>_step<step>.gif, with --tile episodes_seed<seed>_step<step>.gif)"""

    def run(self) -> None:
        import re

        import jax

        from mtrl.evaluate import check_epsilon
        from mtrl.policy import load_policy
        from mtrl.render import check_drawable, drawable, save_gif
        from mtrl.tasks import parse_task

        check_epsilon(self.epsilon, "--epsilon")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.fps is not None and not 0 < self.fps <= 50:
            raise ValueError(f"--fps must be in (0, 50] (GIF frame times are hundredths of a second), got {self.fps}")
        if len(self.tasks) != 1 and self.head is not None:
            raise ValueError("--head needs exactly one task (--tasks SPEC)")
        # a directory: one that exists, or a name without an extension (created); else one .gif file
        to_dir = self.out is None or os.path.isdir(self.out) or not os.path.splitext(self.out)[1]
        if not to_dir:
            if len(self.tasks) != 1 and not self.tile:
                raise ValueError(f"--out {self.out}: with several tasks, a directory (or --tile: one GIF of them all)")
            if not self.out.lower().endswith(".gif"):
                raise ValueError(f"--out {self.out}: a .gif file, or a directory")
            if not os.path.isdir(os.path.dirname(self.out) or "."):
                raise ValueError(f"--out {self.out}: the directory {os.path.dirname(self.out)} does not exist")
        for task in self.tasks:  # before anything is read or compiled
            check_drawable(parse_task(task))
        policy = load_policy(self.run_dir, self.step, self.seed)
        tasks = list(self.tasks) or [t for t in policy.tasks if drawable(parse_task(t))]
        if not tasks:
            raise ValueError(f"none of this run's tasks ({', '.join(policy.tasks)}) can be drawn: grid observations "
                             "or CartPole, Acrobot, MountainCar")
        if skipped := [t for t in policy.tasks if not self.tasks and t not in tasks]:
            print(f"not drawn (neither a grid nor CartPole, Acrobot, MountainCar): {', '.join(skipped)}")
        for task in tasks:
            policy.check_playable(task, self.head)
        directory = self.run_dir if self.out is None else self.out
        if to_dir:
            os.makedirs(directory, exist_ok=True)
        suffix = f"_seed{policy.seed}_step{policy.step}" + (f"_eps{self.epsilon:g}" if self.epsilon else "")
        slug = lambda task: re.sub(r"[^A-Za-z0-9.-]+", "_", task)  # noqa: E731
        if self.tile:
            outs = [os.path.join(directory, f"episodes{suffix}.gif") if to_dir else self.out] * len(tasks)
        else:
            outs = [os.path.join(directory, f"episode_{slug(task)}{suffix}.gif") if to_dir else self.out
                    for task in tasks]
        how = "greedy" if not self.epsilon else f"ε {self.epsilon:g}"
        episodes = [policy.record_episode(task, self.epsilon, self.head, jax.random.key(self.episode_seed),
                                          self.max_steps) for task in tasks]
        if self.tile:
            save_gif(episodes, outs[0], self.fps)
        for episode, out in zip(episodes, outs, strict=True):
            if not self.tile:
                save_gif(episode, out, self.fps)
            print(f"{episode.task.spec}, seed {policy.seed} at {policy.step:,} env steps per task, {how}: return "
                  f"{episode.episode_return:g} in {len(episode.actions)} steps"
                  f"{'' if episode.ended else ' (cut: --max-steps)'}: {out}")


COMMANDS = {"train": Train, "transfer": Transfer, "study": Study, "sweep": Sweep, "evaluate": Evaluate,
            "render": Render, "plot": Plot, "compare": Compare, "status": Status}


def help_as_paragraphs(command: type) -> None:
    """Give each field of the dataclass ``command`` (and of the dataclasses its fields default to) its docstring as
    one paragraph in ``help`` metadata, which tyro reads before the docstring. tyro (1.0.17) joins a field
    docstring's lines before dedenting them, so every indented continuation line kept its break and ``--help``
    broke sentences wherever the source wrapped them."""
    import docstring_parser

    docs = {p.arg_name: p.description for p in docstring_parser.parse_from_object(command).params if p.description}
    for field in dataclasses.fields(command):
        if field.name in docs and "help" not in field.metadata:
            field.metadata = types.MappingProxyType({**field.metadata, "help": " ".join(docs[field.name].split())})
        if dataclasses.is_dataclass(field.default_factory):
            help_as_paragraphs(field.default_factory)


# `train`'s arguments a `ConfigError` may name, with the flags that set them.
TRAIN_ARGUMENT_FLAGS = {"checkpoints.every": "--checkpoint-every", "checkpoints.keep": "--keep-checkpoints",
                        "stop_at_step": "--stop-at-step"}


def setting_flags() -> dict[str, str]:
    """The settings a `ConfigError` or `ConfigWarning` may name, each with its flag on the command line."""
    fields = {f.name for cls in (DQNConfig, TransferConfig) for f in dataclasses.fields(cls)}
    return {name: f"--{name.replace('_', '-')}" for name in fields} | TRAIN_ARGUMENT_FLAGS


@contextlib.contextmanager
def mtrl_warnings(prog: str = "mtrl", flags: Mapping[str, str] | None = None):
    """mtrl's own warnings (a `UserWarning` raised in the mtrl package, e.g. a run that takes no update) as one
    ``PROG: warning: ...`` line each, once per message however many checks raise it; a `ConfigWarning` names the
    settings in ``flags`` (name -> flag; default: all of `mtrl`'s, `setting_flags`) as flags. Other warnings as
    usual."""
    package = os.path.dirname(os.path.abspath(__file__))
    flags = setting_flags() if flags is None else flags
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UserWarning) and os.path.abspath(filename).startswith(package + os.sep):
            text = message.with_flags(flags) if isinstance(message, ConfigWarning) else str(message)
            if text not in shown:
                shown.add(text)
                print(f"{prog}: warning: {text}", file=sys.stderr)
            return
        original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        original = warnings.showwarning
        warnings.showwarning = show
        yield


# The arguments `main` is running (the command line after ``mtrl``; empty outside `main`), for `command_line`.
_parsed_argv: list[str] = []

# Flags left out of the command that continues a sweep (`command_line`), each with how many values it takes: rerun
# with them, it would move the sweep aside or stop again where it stopped; its directory is given anew.
NOT_RERUN = {"--overwrite": 0, "--no-overwrite": 0, "--stop-at-step": 1, "--run-dir": 1}


def without_flags(argv: Sequence[str], drop: Mapping[str, int]) -> list[str]:
    """``argv`` without the flags in ``drop`` (flag -> how many values follow it), written ``--flag value``,
    ``--flag=value`` or with underscores (``--stop_at_step``)."""
    kept, i = [], 0
    while i < len(argv):
        name = argv[i].split("=", 1)[0].replace("_", "-")
        if name in drop:
            i += 1 + (drop[name] if "=" not in argv[i] else 0)
            continue
        kept.append(argv[i])
        i += 1
    return kept


def command_line(argv: Sequence[str] | None = None, drop: Mapping[str, int] | None = None,
                 run_dir: str | None = None) -> str | None:
    """The command ``mtrl ARGV`` as one shell line (``python -m mtrl ...`` when started that way; default ``argv``:
    what `main` is running, None outside it), without the flags in ``drop`` (`without_flags`) and, with
    ``run_dir``, ending in ``--run-dir`` with its absolute path (the directory a default one resolved to): recorded
    in config.json and sweep_plan.json, so that `mtrl status` can say how to go on."""
    if argv is None and not _parsed_argv:
        return None
    words = without_flags(list(_parsed_argv if argv is None else argv), drop or {})
    if run_dir is not None:
        words += ["--run-dir", os.path.abspath(run_dir)]
    started_as_module = os.path.basename(os.path.dirname(sys.argv[0])) == "mtrl" and sys.argv[0].endswith(
        "__main__.py")
    return " ".join(["python -m mtrl" if started_as_module else "mtrl", *(shlex.quote(a) for a in words)])


# the Python function behind each training command, for messages that point to it
PYTHON_API = {"train": "mtrl.train", "transfer": "mtrl.transfer.train_transfer",
              "study": "mtrl.study.transfer_study", "sweep": "mtrl.sweep"}


def seeds_list_error(argv: Sequence[str]) -> str | None:
    """The message for ``--seeds`` given a list of seeds (tyro would only say "Unrecognized options")."""
    is_number = lambda token: token.isascii() and token.isdecimal()  # noqa: E731
    for i, token in enumerate(argv):
        flag, eq, first = token.partition("=")
        given = ([first] if eq else []) + list(itertools.takewhile(is_number, argv[i + 1:]))
        if flag == "--seeds" and len(given) > 1 and all(map(is_number, given)):
            seeds = [int(g) for g in given]
            if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
                instead = f"write --seed {seeds[0]} --seeds {len(seeds)}"
            else:
                api = PYTHON_API.get(argv[0] if argv else "", "mtrl.train")
                instead = f"seeds that are not consecutive need the Python API: {api}(..., seeds={seeds})"
            return (f"--seeds takes how many seeds, not a list: --seeds N trains seeds --seed, --seed + 1, ..., "
                    f"--seed + N - 1; got --seeds {' '.join(given)}: {instead}")
    return None


# Flags of other DQN code (CleanRL's dqn.py, Stable-Baselines3) with the mtrl flag that sets the same thing: tyro
# would only suggest look-alike flags (--learning-starts for --learning-rate).
OTHER_LIBRARIES_FLAGS = {
    "--learning-rate": "--lr (Adam's learning rate)",
    "--total-timesteps": "--total-steps (env steps per task)",
    "--start-e": "--eps-start",
    "--end-e": "--eps-end",
    "--exploration-fraction": "--eps-decay-fraction (the share of --total-steps over which ε decays)",
    "--exploration-initial-eps": "--eps-start",
    "--exploration-final-eps": "--eps-end",
    "--target-network-frequency": "--target-update-period (counted in gradient updates, not env steps)",
    "--target-update-interval": "--target-update-period (counted in gradient updates, not env steps)",
    "--train-frequency": "--update-every (iterations of --num-envs env steps per task between gradient updates)",
    "--train-freq": "--update-every (iterations of --num-envs env steps per task between gradient updates)",
}


def other_library_flag_error(argv: Sequence[str]) -> str | None:
    """The message for a flag of other DQN code that mtrl spells otherwise (`OTHER_LIBRARIES_FLAGS`), naming
    mtrl's."""
    if not argv or argv[0] not in PYTHON_API:  # the training commands, which take DQN's settings
        return None
    for token in argv:
        flag = token.partition("=")[0].replace("_", "-")
        if flag in OTHER_LIBRARIES_FLAGS:
            return f"{token.partition('=')[0]} is not an mtrl flag; mtrl's is {OTHER_LIBRARIES_FLAGS[flag]}"
    return None


def optional_number_flags(command: type) -> set[str]:
    """The flags of ``command`` (and of the dataclasses its fields hold) whose value is a number, or numbers, or
    None: ``--max-grad-norm``, ``--task-weights``, ... in both spellings tyro reads (``--max_grad_norm``)."""
    flags: set[str] = set()
    seen: set[type] = set()

    def numeric(hint: Any) -> bool:
        if hint in (int, float):
            return True
        return typing.get_origin(hint) is tuple and all(a in (int, float, Ellipsis) for a in typing.get_args(hint))

    def visit(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for name, hint in typing.get_type_hints(cls).items():
            args = typing.get_args(hint)
            if type(None) in args and all(a is type(None) or numeric(a) for a in args):
                flags.update({f"--{name.replace('_', '-')}", f"--{name}"})
            for candidate in (hint, *args):
                if dataclasses.is_dataclass(candidate):
                    visit(candidate)

    visit(command)
    return flags


def spell_none(argv: Sequence[str], flags: set[str]) -> list[str]:
    """``none`` or ``null`` (any case) given to one of ``flags`` as tyro spells it, ``None``: ``--max-grad-norm
    none`` means no clipping (tyro takes only ``None``)."""
    out = list(argv)
    for i, token in enumerate(out):
        flag, eq, value = token.partition("=")
        if eq and flag in flags and value.lower() in ("none", "null"):
            out[i] = f"{flag}=None"
        elif i > 0 and out[i - 1] in flags and token.lower() in ("none", "null"):
            out[i] = "None"
    return out


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["--version"]:
        from mtrl import __version__

        print(f"mtrl {__version__}")
        return
    if error := seeds_list_error(argv) or other_library_flag_error(argv):
        print(f"mtrl: error: {error}", file=sys.stderr)
        raise SystemExit(2)
    for cls in COMMANDS.values():
        help_as_paragraphs(cls)
    flags = optional_number_flags(COMMANDS[argv[0]]) if argv and argv[0] in COMMANDS else set()
    command = tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="mtrl",
                                                   args=spell_none(argv, flags),
                                                   description="Multi-task and transfer deep Q-learning in JAX. "
                                                               "`mtrl --version` prints the version.")
    options = getattr(command, "run_options", None)
    if options is not None and options.distributed:
        why = None
        if isinstance(command, Sweep) and (command.launcher or command.collect):
            why = ("--distributed runs one sweep program across processes; --launcher runs its shards as jobs of "
                   "their own (one or the other), and --collect needs no devices")
        elif not (options.run_dir or getattr(command, "resume", None)):
            why = "--distributed needs --run-dir or --resume (the same for every process)"
        if why:
            print(f"mtrl: error: {why}", file=sys.stderr)
            raise SystemExit(2)
        from mtrl.distributed import initialize

        initialize(options.coordinator, options.num_processes, options.process_id)
    _parsed_argv[:] = argv
    try:
        with mtrl_warnings():
            command.run()
    except ConfigError as e:
        print(f"mtrl: error: {e.with_flags(setting_flags())}", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"mtrl: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except RuntimeError as e:
        # mtrl.trainer (and jax with it) is looked up, not imported: a command that never trained (compare, plot)
        # cannot have raised its error, and starts without loading jax
        trainer = sys.modules.get("mtrl.trainer")
        if trainer is None or not isinstance(e, trainer.RunDivergedError):
            raise
        print(f"mtrl: error: {e}", file=sys.stderr)  # not bad input: the run itself went non-finite (exit 3)
        raise SystemExit(3) from None
    finally:
        _parsed_argv.clear()  # a later command from Python records its own, or none
