"""Transfer as parameter-tree surgery, and the transfer modes of a target run.

`splice` copies named parts of a pretrained parameter tree (``"torso"`` by default) into a fresh tree built for
the target tasks, and optionally maps chosen source heads or adapters onto chosen target tasks. Every copied
leaf's path and shape is checked first; all mismatches are reported together. Inputs are never modified.

Modes of a target run (`TransferConfig.mode`); every mode starts a fresh optimiser state and its own ε schedule:

* ``scratch``  — no transfer: the baseline, same seeds.
* ``finetune`` — spliced parts initialised from the source, everything trains.
* ``frozen``   — spliced parts never change: `optax.partition` sends them to `optax.set_to_zero`, so they carry
  no optimiser state and stay bit-identical.
* ``unfreeze`` — frozen for the first `unfreeze_at` env steps, then trained (own Adam state, learning rate
  times `unfreeze_lr_scale`) through `optax.conditionally_mask`.
* ``l2sp``     — everything trains, with the penalty α‖θ_parts − θ_parts^src‖² (Li et al., 2018) in the loss.
* ``joint``    — the source tasks stay in the task set with their spliced heads; the loss is
  L_source + λ·L_target (λ = `transfer_factor`, as per-task loss weights).

Target run ``r`` starts from source run ``r mod S_source`` (recorded in the provenance). This module builds
trainers and initial states; the training loop is `mtrl.trainer.train`.

Param tree contract (see `mtrl.networks`): ``{"adapter"?: [T, ...], "torso": shared, "head": [T, ...]}``.

Axes: ``S`` (``S_source``) runs of the target (source) run, ``T`` tasks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtrl.config import FIELDS_ADDED_LATER, DQNConfig
from mtrl.distributed import from_host
from mtrl.transfer_config import (  # noqa: F401  (the transfer API, importable from here as before)
    MODE_SETTINGS,
    MODES,
    TransferConfig,
    TransferSettings,
    updates_before,
)

PER_TASK_PARTS = ("adapter", "head")


def _leaves_by_path(tree: Any) -> dict[str, jax.Array]:
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


# Per-task parts may be wider in the target along one axis, because a task set pads every task to its widest
# member: adapter kernels along their input axis (observation channels or features), heads along their output axis
# (actions). The source's entries are copied into the leading slice; the rest only ever meet zero padding or masked
# actions for the mapped tasks, so they keep their fresh values. That holds for an adapter only when padding adds
# inputs at the end: vector observations, or a 1x1-conv adapter's channels; a dense adapter on flattened images
# must not widen (padding channels moves every pixel's position), which `splice`'s ``widen`` argument says.
WIDENING_AXIS = {"adapter": -2, "head": -1}


def _check_same_structure(name: str, source: Any, target: Any, drop_task_axis: bool = False,
                          widening_axis: int | None = None) -> list[str]:
    """Mismatch messages between two subtrees (paths missing on either side, or shapes that differ).
    ``widening_axis``: leaves may be longer in the target along that axis (leaves without it must match)."""
    src, tgt = _leaves_by_path(source), _leaves_by_path(target)
    problems = [f"{name}{p}: missing in target" for p in sorted(src.keys() - tgt.keys())]
    problems += [f"{name}{p}: missing in source" for p in sorted(tgt.keys() - src.keys())]
    for p in sorted(src.keys() & tgt.keys()):
        s_shape, t_shape = jnp.shape(src[p]), jnp.shape(tgt[p])
        if drop_task_axis:
            s_shape, t_shape = s_shape[1:], t_shape[1:]
        if s_shape == t_shape or _widens(s_shape, t_shape, widening_axis):
            continue
        what = "per-task shape" if drop_task_axis else "shape"
        problems.append(f"{name}{p}: source {what} {s_shape} vs target {what} {t_shape}")
    return problems


def _widens(s_shape: tuple[int, ...], t_shape: tuple[int, ...], axis: int | None) -> bool:
    """Whether ``t_shape`` equals ``s_shape`` except for a longer ``axis``."""
    if axis is None or len(s_shape) != len(t_shape) or not -len(s_shape) <= axis < 0:
        return False
    others = [i for i in range(len(s_shape)) if i != len(s_shape) + axis]
    return all(s_shape[i] == t_shape[i] for i in others) and s_shape[axis] <= t_shape[axis]


def splice(
    source_params: Mapping[str, Any],
    target_params: Mapping[str, Any],
    parts: Sequence[str] = ("torso",),
    head_map: Mapping[int, int] | None = None,
    head_map_parts: Sequence[str] = ("head",),
    widen: Sequence[str] = tuple(WIDENING_AXIS),
) -> dict[str, Any]:
    """A new parameter tree: ``parts`` copied from ``source_params``, everything else from ``target_params``.

    Args:
        source_params: pretrained tree (e.g. a source run's online params for one seed).
        target_params: freshly initialised tree for the target task set.
        parts: top-level parts copied whole; shapes must match exactly.
        head_map: ``{target_task: source_task}``: copy those tasks' slices of ``head_map_parts`` (per-task parts
            with a leading task axis) from the source; other target tasks keep their fresh values.
        head_map_parts: which per-task parts `head_map` applies to (``"head"``, ``"adapter"``). The target's may
            be wider along `WIDENING_AXIS` (a task set pads observations and actions to its widest task): adapter
            kernels along their input axis, heads along their actions; the source's entries fill the leading
            slice, the rest keep their fresh values (they meet only zero padding or masked actions).
        widen: the per-task parts that may be wider (drop ``"adapter"`` for a dense adapter on flattened images).

    Raises:
        ValueError: listing every missing part, path or shape mismatch, or out-of-range task index.
    """
    problems = splice_problems(source_params, target_params, parts, head_map, head_map_parts, widen)
    if problems:
        raise ValueError("cannot splice parameters:\n  " + "\n  ".join(problems))

    head_map = dict(head_map or {})
    out = dict(target_params)
    for part in parts:
        out[part] = jax.tree.map(jnp.array, source_params[part])  # fresh buffers: no aliasing of the source
    for part in head_map_parts if head_map else ():
        targets = jnp.array(list(head_map.keys()))
        sources = jnp.array(list(head_map.values()))
        out[part] = jax.tree.map(lambda t, s: _copy_tasks(t, s, targets, sources), target_params[part],
                                 source_params[part])
    return out


def splice_problems(source_params, target_params, parts: Sequence[str] = ("torso",),
                    head_map: Mapping[int, int] | None = None, head_map_parts: Sequence[str] = ("head",),
                    widen: Sequence[str] = tuple(WIDENING_AXIS)) -> list[str]:
    """Why `splice` would refuse these trees (empty if it would not); needs only shapes (arrays or
    `jax.ShapeDtypeStruct`), so a run can be checked before anything is built."""
    problems: list[str] = []
    for part in parts:
        if part not in source_params:
            problems.append(f"{part}: not in source params (has {sorted(source_params)})")
        elif part not in target_params:
            problems.append(f"{part}: not in target params (has {sorted(target_params)})")
        else:
            problems += _check_same_structure(part, source_params[part], target_params[part])
    head_map = dict(head_map or {})
    for part in head_map_parts if head_map else ():
        if part not in PER_TASK_PARTS:
            problems.append(f"{part}: head_map applies only to per-task parts {PER_TASK_PARTS}")
            continue
        if part not in source_params or part not in target_params:
            problems.append(f"{part}: head_map needs it in both source and target params")
            continue
        problems += _check_same_structure(part, source_params[part], target_params[part], drop_task_axis=True,
                                          widening_axis=WIDENING_AXIS[part] if part in widen else None)
        n_src = jax.tree.leaves(source_params[part])[0].shape[0]
        n_tgt = jax.tree.leaves(target_params[part])[0].shape[0]
        for t, s in head_map.items():
            if not (0 <= t < n_tgt and 0 <= s < n_src):
                problems.append(f"head_map {t}: {s} out of range: target has {n_tgt} tasks, source {n_src}")
    return problems


def _copy_tasks(target: jax.Array, source: jax.Array, targets: jax.Array, sources: jax.Array) -> jax.Array:
    """``target[targets] = source[sources]`` on the leading task axis; where another axis differs in length (a
    widened input or action axis), only the overlapping leading entries are copied."""
    n = tuple(slice(0, min(a, b)) for a, b in zip(target.shape[1:], source.shape[1:]))
    return target.at[(targets, *n)].set(source[(sources, *n)])


def part_labels(parts: Sequence[str]):
    """``labels(params)``: ``"frozen"`` for every leaf under ``parts``, ``"train"`` elsewhere (`optax.partition`)."""

    def labels(params):
        return {k: jax.tree.map(lambda _, k=k: "frozen" if k in parts else "train", v) for k, v in params.items()}

    return labels


def make_partition(config: DQNConfig, tcfg: TransferConfig):
    """The `make_optimizer` ``partition`` argument for a mode, or None (one group, everything trains)."""
    labels = part_labels(tcfg.parts)
    if tcfg.mode == "frozen":
        return lambda adam: optax.partition({"train": adam(), "frozen": optax.set_to_zero()}, labels)
    if tcfg.mode == "unfreeze":
        start = updates_before(config, tcfg.unfreeze_at)
        return lambda adam: optax.partition(
            {"train": adam(),
             "frozen": optax.conditionally_mask(adam(tcfg.unfreeze_lr_scale), lambda step: step >= start)},
            labels,
        )
    return None


def target_task_list(mode: str, source_tasks: Sequence[str], target_tasks: Sequence[str]) -> list[str]:
    """Tasks of the target run: ``joint`` keeps the source tasks first."""
    return list(source_tasks) + list(target_tasks) if mode == "joint" else list(target_tasks)


def target_config(config: DQNConfig, tcfg: TransferConfig, num_source_tasks: int, num_target_tasks: int):
    """``joint``: per-task loss weights 1 for source tasks and λ for target tasks; other modes: unchanged."""
    if tcfg.mode != "joint":
        return config
    weights = (1.0,) * num_source_tasks + (float(tcfg.transfer_factor),) * num_target_tasks
    return dataclasses.replace(config, task_weights=weights)


def build_trainer(tasks: Sequence[str], config: DQNConfig, tcfg: TransferConfig):
    """The `Trainer` of a target run (``tasks`` and ``config`` as returned by `target_task_list` and
    `target_config`)."""
    from mtrl.agent import make_optimizer
    from mtrl.trainer import Trainer

    tcfg.validate()
    optimizer = make_optimizer(config.max_grad_norm, config.lr, config.num_updates, config.lr_end_fraction,
                               partition=make_partition(config, tcfg))
    l2sp = tcfg.mode == "l2sp"
    return Trainer.create(tasks, config, optimizer=optimizer, l2sp_parts=tuple(tcfg.parts) if l2sp else (),
                          l2sp_alpha=tcfg.l2sp_alpha if l2sp else 0.0)


@dataclasses.dataclass(frozen=True)
class Source:
    """A source run's online parameters at one checkpoint.

    Attributes:
        params: leaves ``[S_source, ...]``; a PopArt source's statistics are folded into its heads (`load_source`),
            so every head outputs unnormalised Q-values.
        metadata: the checkpoint's metadata (config, tasks, seeds, step).
        run_dir: where it came from.
    """

    params: Any
    metadata: dict[str, Any]
    run_dir: str

    @property
    def tasks(self) -> list[str]:
        return list(self.metadata["tasks"])

    @property
    def seeds(self) -> list[int]:
        return list(self.metadata["seeds"])

    @property
    def step(self) -> int:
        return int(self.metadata["step"])

    @property
    def env_steps(self) -> int:
        """Env steps the source run took over all its tasks, per seed (for time-to-threshold with source)."""
        return self.step * len(self.tasks)

    @property
    def fingerprint(self) -> str:
        """What identifies the source's parameters (`source_fingerprint` of its checkpoint metadata)."""
        return source_fingerprint(self.metadata)


def source_fingerprint(metadata: Mapping[str, Any]) -> str:
    """sha256 (first 16 hex digits) of a checkpoint's config, tasks, seeds, step and transfer provenance: two
    sources with the same fingerprint were trained the same way to the same step."""
    import hashlib

    keys = ("config", "tasks", "seeds", "step", "transfer")
    identity = {k: metadata.get(k) for k in keys}
    if metadata.get("sweep_setting") is not None:  # a sweep's setting (absent elsewhere: fingerprints unchanged)
        identity["sweep_setting"] = metadata["sweep_setting"]
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_source(run_dir: str, step: int | None = None) -> Source:
    """Online params of every seed of ``run_dir`` at checkpoint ``step`` (default: latest). A sweep's setting is
    read from its shard's checkpoint (`sweep_setting_checkpoints`): its runs, with the setting's config and seeds as
    the source's metadata."""
    from mtrl.checkpoint import Checkpointer
    from mtrl.provenance import read_config_json
    from mtrl.sweep_grid import setting_tasks

    if not os.path.isdir(run_dir):
        raise ValueError(f"source run directory {run_dir!r} does not exist")
    setting = sweep_setting_checkpoints(run_dir)
    ckpt = Checkpointer(run_dir if setting is None else setting[0], read_only=True)
    try:
        metadata = ckpt.metadata(step)
        restored = ckpt.restore_untyped(metadata["step"], paths=("runs.train.params", "runs.train.popart"))
    except FileNotFoundError as e:
        raise ValueError(f"source run {run_dir!r} has no checkpoint to transfer from ({e})") from None
    finally:
        ckpt.close()
    train = restored.get("runs", {}).get("train", {})
    if "params" not in train:
        raise ValueError(f"source run {run_dir!r}: its checkpoint at step {metadata['step']} holds no "
                         "runs.train.params (not a checkpoint of an mtrl run of this format)")
    if setting is not None:  # this setting's runs of the shard's run axis, described by the setting's config.json
        runs = np.asarray(setting[2])
        train = jax.tree.map(lambda x: np.asarray(x)[runs], train)
        own = read_config_json(run_dir)
        metadata = {"step": metadata["step"], "format_version": metadata.get("format_version"),
                    "config": own["config"], "tasks": setting_tasks(own["tasks"], own.get("sweep_setting") or {}),
                    "seeds": own["seeds"], "transfer": own.get("transfer"), "sweep_setting": own.get("sweep_setting")}
    params = jax.tree.map(jnp.asarray, train["params"])
    if train.get("popart") is not None:
        params = _fold_popart(params, train["popart"])
    return Source(params=params, metadata=metadata, run_dir=os.path.abspath(run_dir))


def _fold_popart(params: dict, stats: Mapping[str, Any]) -> dict:
    """Heads rescaled so they output σₜ q̃ + μₜ with identity statistics (leaves ``[S, ...]``, stats ``[S, T]``):
    a copied head then means the same in a target with or without PopArt, whose statistics start at identity."""
    from mtrl import popart

    state = popart.PopArtState(**{k: jnp.asarray(v) for k, v in stats.items()})
    identity = popart.init(state.shift.shape[-1])
    return jax.vmap(lambda p, s: popart.preserve_outputs(p, s, identity))(params, state)


def provenance(source: Source, tcfg: TransferConfig, seeds: Sequence[int], target_tasks: Sequence[str]) -> dict:
    """What config.json records about a target run's origin."""
    spliced = [] if tcfg.mode == "scratch" else list(tcfg.parts)
    return {
        "source_run": source.run_dir,
        "source_step": source.step,
        "source_tasks": source.tasks,
        "source_seeds": source.seeds,
        "source_env_steps": source.env_steps,
        "source_fingerprint": source.fingerprint,
        "target_tasks": list(target_tasks),
        "seed_map": {str(seed): source.seeds[r % len(source.seeds)] for r, seed in enumerate(seeds)},
        "spliced": spliced,
        "head_map": ({str(i): i for i in range(len(source.tasks))} if tcfg.mode == "joint" else {}),
        "settings": dataclasses.asdict(tcfg),
    }


def _splice_plan(source: Source, target_params, tcfg: TransferConfig, trainer):
    """``(head_map, head_map_parts, widen)`` of a target run: ``joint`` copies the source tasks' heads (and adapters
    not spliced whole) to the same task indices; other modes copy no per-task part. Adapters may widen only where
    padding adds inputs at the end (vector observations, or a conv network's 1x1-conv adapter)."""
    widen = ("head", "adapter") if trainer.config.conv_channels or len(trainer.agent.obs_shape) == 1 else ("head",)
    if tcfg.mode != "joint":
        return None, ("head",), widen
    head_map = {i: i for i in range(len(source.tasks))}
    return head_map, tuple(p for p in ("head", "adapter") if p in target_params and p not in tcfg.parts), widen


def check_splice(source: Source, trainer, tcfg: TransferConfig) -> None:
    """Raise the `splice` error for ``tcfg.mode`` from shapes alone, before any run directory or program is made
    (e.g. a source torso whose input width differs from the target's)."""
    if tcfg.mode == "scratch":
        return
    source_protocol = (source.metadata.get("config") or {}).get("protocol", FIELDS_ADDED_LATER["protocol"])
    if source_protocol != trainer.config.protocol and (tcfg.mode == "joint" or "head" in tcfg.parts):
        raise ValueError(f"cannot transfer from {source.run_dir} in mode {tcfg.mode}: the source ran protocol "
                         f"{source_protocol!r} and the target runs {trainer.config.protocol!r}, whose action sets "
                         "differ, so the source's heads would score other actions"
                         + (" and joint would train its tasks under another protocol" if tcfg.mode == "joint" else "")
                         + f"; use protocol {source_protocol!r}, or transfer the torso or adapters only")
    target = jax.eval_shape(lambda k: trainer.agent.init(k, trainer.hparams).params, jax.random.key(0))
    src = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), source.params)
    problems = splice_problems(src, target, tcfg.parts, *_splice_plan(source, target, tcfg, trainer))
    if problems:
        from mtrl.tasks import make_taskset

        source_config = source.metadata.get("config") or {}
        as_list = lambda v: list(v) if isinstance(v, (tuple, list)) else v  # noqa: E731
        source_obs = make_taskset(source.tasks, source_protocol).obs_shape
        differ = [f"{k} {as_list(source_config[k])} vs {as_list(getattr(trainer.config, k))}"
                  for k in ("torso", "adapter_size", "conv_channels", "layer_norm")
                  if k in source_config and as_list(source_config[k]) != as_list(getattr(trainer.config, k))]
        if tuple(source_obs) != tuple(trainer.taskset.obs_shape):
            differ.append(f"observations (padded) {list(source_obs)} vs {list(trainer.taskset.obs_shape)}")
        raise ValueError(f"cannot transfer from {source.run_dir} in mode {tcfg.mode}; cannot splice parameters:\n  "
                         + "\n  ".join(problems) + "\nThe spliced parts must have the same shapes in both networks: "
                         "the same --torso, and observations padded to the same width unless both runs use "
                         "--adapter-size (mode joint on images with more channels: also --conv-channels, whose "
                         "adapters are 1x1 convolutions)."
                         + (f" Source vs target: {'; '.join(differ)}." if differ else ""))


def initial_state_fn(source: Source, tcfg: TransferConfig, hparams=None, learning_rates=None,
                     source_runs: Sequence[int] | None = None):
    """``init_state(trainer, seeds)`` for `mtrl.trainer.train`: a fresh target state with the source spliced in.

    ``hparams`` and ``learning_rates`` (``[S]``, a sweep's) go to `Trainer.init`; target run r starts from source
    run ``source_runs[r]`` (default ``r mod S_source``)."""

    def init_state(trainer, seeds):
        fresh = trainer.init(seeds, hparams, learning_rates)
        if tcfg.mode == "scratch":
            return fresh
        runs = np.arange(len(seeds)) % len(source.seeds) if source_runs is None else np.asarray(source_runs)
        # placed as the target's runs are (maybe sharded over devices and processes), each process from its copy
        src = from_host(jax.tree.map(lambda x: np.asarray(x)[runs], source.params), fresh.runs.obs.sharding)
        target = fresh.runs.train.params
        plan = _splice_plan(source, target, tcfg, trainer)
        # Check once on seed 0 for a clear error before anything is traced over the run axis.
        first = lambda tree: jax.tree.map(lambda x: x[0], tree)  # noqa: E731
        splice(first(src), first(target), tcfg.parts, *plan)
        spliced = jax.vmap(lambda s, t: splice(s, t, tcfg.parts, *plan))(src, target)
        anchor = {part: src[part] for part in tcfg.parts} if tcfg.mode == "l2sp" else None
        return trainer.with_params(fresh, spliced, anchor)

    return init_state


def warn_shared_sources(source: Source, seeds: Sequence[int]) -> None:
    """Warn when target runs must share source networks: target run r (0-based) starts from the source's run
    r mod S_source, so with more target seeds than source seeds some targets are not independent."""
    num_sources, seeds = len(source.seeds), list(seeds)
    if len(seeds) > num_sources:
        warnings.warn(f"{len(seeds)} target seeds start from {num_sources} source networks (target run r starts from "
                      f"source run r mod {num_sources}; target seeds {seeds[::num_sources]} share source seed "
                      f"{source.seeds[0]}): runs that share a source network are "
                      "not independent, so intervals over the seeds are too narrow; train the source with at least as "
                      "many seeds", stacklevel=1)  # one location: shown once however many callers warn


def train_transfer(
    source_run: str,
    tasks: Sequence[str],
    transfer: TransferConfig = TransferConfig(),
    config: DQNConfig = DQNConfig(),
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    **train_kwargs,
):
    """Train target ``tasks`` starting from ``source_run``'s checkpoint under ``transfer.mode``.

    ``train_kwargs`` go to `mtrl.trainer.train` (progress, checkpoints, stop_at_step, ...). Returns its
    `TrainResult`; config.json records the provenance under ``"transfer"``.
    """
    from mtrl.trainer import train

    transfer.validate().check_acts(config)
    source = load_source(source_run, transfer.source_step)
    all_tasks = target_task_list(transfer.mode, source.tasks, tasks)
    cfg = target_config(config, transfer, len(source.tasks), len(tasks))
    trainer = build_trainer(all_tasks, cfg, transfer)
    check_splice(source, trainer, transfer)
    if transfer.mode != "scratch":
        warn_shared_sources(source, seeds)
    meta = {"transfer": provenance(source, transfer, list(seeds), tasks)}
    return train(None, seeds=seeds, run_dir=run_dir, trainer=trainer, init_state=initial_state_fn(source, transfer),
                 extra_metadata={**meta, **train_kwargs.pop("extra_metadata", {})}, **train_kwargs)


def sweep_setting_checkpoints(run_dir: str, meta: Mapping[str, Any] | None = None):
    """``(shard directory, the shard's config.json, this setting's run indices in it)`` when ``run_dir`` is one
    setting of a sweep (its config.json, ``meta`` when already read, names a shard and it has no checkpoints/ of its
    own): the shard's checkpoints hold every setting of its program in one state, on one run axis. None otherwise."""
    from mtrl.provenance import read_config_json

    meta = read_config_json(run_dir) if meta is None else meta
    shard = (meta.get("sweep") or {}).get("shard")
    if shard is None or os.path.isdir(os.path.join(run_dir, "checkpoints")):
        return None
    path = os.path.realpath(run_dir)  # `.` or a link to the setting: the sweep is the real directory's parent
    program_dir = os.path.join(os.path.dirname(path), "shards", str(shard))
    if not os.path.exists(os.path.join(program_dir, "config.json")):
        raise ValueError(f"{run_dir!r} is one setting of a sweep whose shard {shard} is missing ({program_dir}): its "
                         "checkpoints were there")
    program = read_config_json(program_dir)
    label = os.path.basename(path)
    runs = (program.get("groups") or {}).get(label)
    if runs is None:
        raise ValueError(f"{run_dir!r} is one setting of a sweep, but its shard {shard} ({program_dir}) records no "
                         f"setting {label!r}: the setting's directory was renamed")
    return program_dir, program, [int(r) for r in runs]


def run_metadata(run_dir: str) -> dict[str, Any]:
    """A run directory's config.json."""
    path = os.path.join(run_dir, "config.json")
    if os.path.exists(os.path.join(run_dir, "sweep_plan.json")):
        raise ValueError(f"{run_dir!r} is a sweep, not a run: its settings are the run directories inside it; continue "
                         "it by rerunning the same `python -m mtrl sweep` command, which resumes its shards")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir!r} is not a run directory (no config.json)")
    with open(path) as f:
        return json.load(f)


def run_trainer(meta: Mapping[str, Any], config: DQNConfig | None = None):
    """The `Trainer` that trained the run whose config.json is ``meta`` (plain or transfer; ``config`` defaults
    to the run's own): its state's structure is the one the run's checkpoints hold."""
    from mtrl.trainer import Trainer

    config = config or DQNConfig.from_dict(meta["config"])
    info = meta.get("transfer")
    if info is None:
        return Trainer.create(meta["tasks"], config)
    return build_trainer(meta["tasks"], config, TransferConfig.from_dict(info["settings"]))


def resume_run(run_dir: str, config: DQNConfig | None = None, **train_kwargs):
    """Continue any run directory (plain or transfer) from its latest checkpoint.

    ``config`` (default: the run's own) must match the checkpoint's; any difference is reported.
    """
    from mtrl.trainer import train

    meta = run_metadata(run_dir)
    if meta.get("sweep") is not None:
        raise ValueError(f"{run_dir} belongs to a sweep (one of its settings or shards): continue it by rerunning "
                         "the same `python -m mtrl sweep` command or mtrl.sweep(...) call, which resumes its shards")
    trainer = run_trainer(meta, config)
    info = meta.get("transfer")
    extra = {"transfer": info} if info is not None else None
    return train(None, seeds=meta["seeds"], run_dir=run_dir, trainer=trainer, resume=True, extra_metadata=extra,
                 **train_kwargs)
