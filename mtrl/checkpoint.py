"""Checkpoints of the full runner state with orbax-checkpoint, plus JSON metadata; compatibility checks.

A run directory's ``checkpoints/<step>/`` holds two orbax items: ``state`` (every array of `RunnerState`:
params, target params, optimiser state, replay, env states, keys, counters, every seed) and ``metadata``
(format version, config, tasks, seeds, package versions, the evaluation history so far, and transfer
provenance when there is one). Saving is asynchronous: `save` returns once the arrays are copied off the
device, and the write continues in a background thread. Orbax writes each step to a temporary directory and
renames it when complete, so a checkpoint killed mid-save is never listed and the previous one is used.

Typed PRNG keys are stored as their raw key data and re-wrapped with the implementation of the restore target;
the metadata names the implementation the run's keys use (``key_impl``, `Checkpointer.key_impl`), so a run resumed or
evaluated on another device layout keeps its own keys.
`Checkpointer.restore_parts` reads only some subtrees of a saved state (orbax's partial restore): a policy needs a
run's parameters, not its replay buffer, which in a MinAtar study is most of a checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from etils import epath

from mtrl.config import DQNConfig
from mtrl.provenance import plain

FORMAT_VERSION = 1
CHECKPOINT_SUBDIR = "checkpoints"


class _QuietReadOnly(logging.Filter):
    """Drops orbax's "Given directory is read only" warning: mtrl opens runs read-only on purpose (every transfer
    source, policy and status check), so the warning only cluttered the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_QuietReadOnly())


class IncompatibleCheckpointError(ValueError):
    """A checkpoint that this run cannot continue from; the message lists every difference."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _select(tree: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """The part of nested dicts ``tree`` that nested dicts ``item`` names."""
    return {k: _select(tree[k], v) if isinstance(v, Mapping) else tree[k] for k, v in item.items()}


def _key_name(entry: Any) -> str:
    """The name orbax stores a pytree key path entry under (attribute, dict key or sequence index)."""
    for attribute in ("name", "key", "idx"):
        if hasattr(entry, attribute):
            return str(getattr(entry, attribute))
    raise TypeError(f"unsupported pytree key {entry!r}")


def to_saveable(tree: Any) -> Any:
    """The tree with typed PRNG keys replaced by their raw uint32 key data."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def from_saveable(tree: Any, like: Any) -> Any:
    """Inverse of `to_saveable`: re-wrap key data wherever ``like`` (same structure) holds typed keys."""
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x, impl=_key_impl(ref)) if _is_key(ref) else x,
                        tree, like)


def _key_impl(ref: Any) -> Any:
    """The key implementation of a key array or of an abstract one (read off a zero key of its dtype)."""
    return jax.random.key_impl(ref if isinstance(ref, jax.Array) else jnp.zeros((), ref.dtype))


def key_impl_name(keys: jax.Array) -> str:
    """The name of a typed key array's implementation, as checkpoint metadata records it (``"philox2x32"``)."""
    return str(jax.random.key_impl(keys))


def key_impl_of_width(width: int) -> str:
    """The implementation of mtrl's runs whose raw key data is ``width`` words wide: Philox (one device, 1),
    threefry (sharded over several, 2) or jax's configured default; for checkpoints that predate the recorded
    ``key_impl``."""
    from mtrl.trainer import PHILOX

    for impl in dict.fromkeys((PHILOX, "threefry2x32", key_impl_name(jax.random.key(0)))):
        try:
            if jax.random.key_data(jax.random.key(0, impl=impl)).shape[-1] == width:
                return impl
        except (ValueError, TypeError, KeyError):  # not in this jax
            continue
    raise ValueError(f"saved keys of width {width} match none of this mtrl's key implementations")


def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(os.path.abspath(run_dir), CHECKPOINT_SUBDIR)


class Checkpointer:
    """Asynchronous save / restore of `RunnerState` + metadata in ``run_dir/checkpoints``, keeping the last k."""

    def __init__(self, run_dir: str, keep: int = 3, read_only: bool = False):
        if keep < 1:
            raise ValueError(f"keep (checkpoints kept) must be >= 1, got {keep}")
        self.directory = checkpoint_dir(run_dir)
        # A read-only manager (reading a source run, a policy, a run's status) gets the options orbax would
        # otherwise reset with a warning each; the one warning it always logs is filtered (`_QuietReadOnly`).
        options = (ocp.CheckpointManagerOptions(max_to_keep=None, save_interval_steps=0, create=False, read_only=True)
                   if read_only else
                   ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True))
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "metadata"))

    def steps(self) -> list[int]:
        """Completed checkpoints (env steps per task), oldest first; half-written ones are not listed."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, metadata: dict[str, Any]) -> None:
        """Start saving ``state`` at ``step``; returns once its arrays are off the device."""
        # A deep copy taken now: the write happens in the background, while the caller's lists keep growing.
        metadata = json.loads(json.dumps({**metadata, "format_version": FORMAT_VERSION, "step": int(step)}))
        self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(to_saveable(state)),
                                    metadata=ocp.args.JsonSave(metadata)),
            force=True,
        )

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        step = self._require_step(step)
        return self._manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))["metadata"]

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """(state, metadata) at ``step`` (default: the latest). ``like`` is a state of the same structure,
        shapes and shardings (e.g. a fresh `Trainer.init`), used as the restore target."""
        step = self._require_step(step)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(to_saveable(like)),
                                    metadata=ocp.args.JsonRestore()),
        )
        return from_saveable(restored["state"], like), restored["metadata"]

    def restore_parts(self, parts: Mapping[str, Any], step: int | None = None) -> dict[str, Any]:
        """Only some subtrees of the state saved at ``step`` (default: the latest), read from disk without the rest.

        ``parts`` maps a dotted path in the state (``"runs.train.params"``, ``"iteration"``) to that subtree's
        abstract value (`jax.eval_shape` of the state, e.g. `Trainer.init_shapes`: its structure and typed keys);
        the result maps each path to its subtree (`restore_untyped` ``paths``, re-typed like the abstract one)."""
        raw = self.restore_untyped(step, paths=list(parts))
        out = {}
        for path, abstract in parts.items():
            leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
            values = []
            for key_path, _ in leaves:
                value = raw
                for name in [*path.split("."), *(_key_name(k) for k in key_path)]:
                    value = value[name]
                values.append(value)
            out[path] = from_saveable(jax.tree_util.tree_unflatten(treedef, values), abstract)
        return out

    def restore_untyped(self, step: int | None = None, paths: Sequence[str] | None = None) -> dict[str, Any]:
        """The state at ``step`` as saved, without a target structure: nested dicts of arrays (keys as raw key
        data). For reading parts of another run's state, e.g. a transfer source's params: ``paths`` (dotted,
        ``"runs.train.params"``) reads only those subtrees, shapes taken from the checkpoint's own metadata (a path
        saved as None, or absent, is left out)."""
        step = self._require_step(step)
        if paths is None:
            return self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        saved = self._saved_tree(step)
        item: dict[str, Any] = {}
        for path in paths:
            names, node, subtree = path.split("."), item, saved
            for name in names:
                subtree = subtree.get(name) if isinstance(subtree, Mapping) else None
            if subtree is None:
                continue
            for name in names[:-1]:
                node = node.setdefault(name, {})
            node[names[-1]] = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), subtree)
        return self._read_partial(step, item) if item else {}

    def key_impl(self, step: int | None = None) -> str:
        """Name of the PRNG key implementation of the state saved at ``step`` (default: the latest): as its
        metadata records it, or, in checkpoints written before that was recorded, told by the width of the saved
        key data (`key_impl_of_width`)."""
        step = self._require_step(step)
        recorded = self.metadata(step).get("key_impl")
        if recorded:
            return recorded
        return key_impl_of_width(self._saved_tree(step)["runs"]["key"].shape[-1])

    def _state_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step), "state")

    def _saved_tree(self, step: int) -> Any:
        """The saved state's tree of array metadata (shapes, dtypes), read without the arrays."""
        handler = ocp.PyTreeCheckpointHandler()
        try:
            return handler.metadata(epath.Path(self._state_dir(step))).tree
        finally:
            handler.close()

    def _read_partial(self, step: int, item: dict[str, Any]) -> dict[str, Any]:
        """The arrays of ``item`` (nested dicts of `jax.ShapeDtypeStruct`s, a subset of the saved state's tree)
        read from step ``step``'s state, nothing else (orbax's partial restore; an orbax without it reads the whole
        state and keeps ``item``'s part)."""
        try:
            args = ocp.args.PyTreeRestore(item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                                          partial_restore=True)
        except TypeError:  # no partial_restore in this orbax
            return _select(self.restore_untyped(step), item)
        with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as checkpointer:
            return checkpointer.restore(self._state_dir(step), args=args)

    def _require_step(self, step: int | None) -> int:
        steps = self.steps()
        if not steps:
            raise FileNotFoundError(f"no completed checkpoint in {self.directory}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise ValueError(f"checkpoint step {step} not in {self.directory}; available: {steps}")
        return step

    def wait(self) -> None:
        """Block until every pending save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


# Why a difference cannot be resumed through, where a user is likely to try.
EXTENDING = {"total_steps": " (ε decays and the learning rate anneals over fractions of total_steps, so a run cannot "
                            "be extended: train a new run, or transfer from this one with `mtrl transfer --source`)"}


def compatibility_problems(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences that forbid continuing: format version, tasks, seeds, any config field, transfer setup, a
    sweep's grid.

    ``saved`` is a checkpoint's metadata; ``expected`` has the same keys for the run that wants to resume.
    """
    problems = []
    version = saved.get("format_version")
    if version != FORMAT_VERSION:
        problems.append(f"format_version: checkpoint has {version}, this mtrl reads {FORMAT_VERSION}")
    for key in ("tasks", "seeds"):
        if list(saved.get(key, [])) != list(expected[key]):
            problems.append(f"{key}: checkpoint {saved.get(key)} vs this run {expected[key]}")
    problems += [f"config.{field}: checkpoint {a!r} vs this run {b!r}" + EXTENDING.get(field, "")
                 for field, a, b in config_differences(DQNConfig.with_defaults(saved.get("config")),
                                                       expected["config"])]
    if plain(saved.get("transfer")) != plain(expected.get("transfer")):
        problems.append(f"transfer: checkpoint {saved.get('transfer')} vs this run {expected.get('transfer')}")
    if plain(saved.get("sweep")) != plain(expected.get("sweep")):
        problems.append(f"sweep: checkpoint {saved.get('sweep')} vs this run {expected.get('sweep')}")
    return problems


def config_differences(saved: dict[str, Any], ours: dict[str, Any], ignore: tuple[str, ...] = ()):
    """``[(field, saved value, our value)]`` for every config field (as `dataclasses.asdict` dicts, possibly
    read back from JSON) that differs, fields in ``ignore`` aside."""
    out = []
    for field in sorted((set(saved) | set(ours)) - set(ignore)):
        a, b = plain(saved.get(field)), plain(ours.get(field))
        if a != b:
            out.append((field, a, b))
    return out


def check_compatible(saved: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    problems = compatibility_problems(saved, expected)
    if problems:
        raise IncompatibleCheckpointError(
            f"checkpoint in {where} does not match this run:\n  " + "\n  ".join(problems)
        )
