"""Transfer as parameter-tree surgery.

`splice` copies named parts of a pretrained parameter tree (``"torso"`` by default) into a fresh tree built for
the target tasks, and optionally maps chosen source heads or adapters onto chosen target tasks. Every copied
leaf's path and shape is checked first; all mismatches are reported together. Inputs are never modified.

Param tree contract (see `mtrl.networks`): ``{"adapter"?: [T, ...], "torso": shared, "head": [T, ...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

PER_TASK_PARTS = ("adapter", "head")


def _leaves_by_path(tree: Any) -> dict[str, jax.Array]:
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _check_same_structure(name: str, source: Any, target: Any, drop_task_axis: bool = False) -> list[str]:
    """Mismatch messages between two subtrees (paths missing on either side, or shapes that differ)."""
    src, tgt = _leaves_by_path(source), _leaves_by_path(target)
    problems = [f"{name}{p}: missing in target" for p in sorted(src.keys() - tgt.keys())]
    problems += [f"{name}{p}: missing in source" for p in sorted(tgt.keys() - src.keys())]
    for p in sorted(src.keys() & tgt.keys()):
        s_shape, t_shape = jnp.shape(src[p]), jnp.shape(tgt[p])
        if drop_task_axis:
            s_shape, t_shape = s_shape[1:], t_shape[1:]
        if s_shape != t_shape:
            what = "per-task shape" if drop_task_axis else "shape"
            problems.append(f"{name}{p}: source {what} {s_shape} vs target {what} {t_shape}")
    return problems


def splice(
    source_params: Mapping[str, Any],
    target_params: Mapping[str, Any],
    parts: Sequence[str] = ("torso",),
    head_map: Mapping[int, int] | None = None,
    head_map_parts: Sequence[str] = ("head",),
) -> dict[str, Any]:
    """A new parameter tree: ``parts`` copied from ``source_params``, everything else from ``target_params``.

    Args:
        source_params: pretrained tree (e.g. a source run's online params for one seed).
        target_params: freshly initialised tree for the target task set.
        parts: top-level parts copied whole; shapes must match exactly.
        head_map: ``{target_task: source_task}``: copy those tasks' slices of ``head_map_parts`` (per-task parts
            with a leading task axis) from the source; other target tasks keep their fresh values.
        head_map_parts: which per-task parts `head_map` applies to (``"head"``, ``"adapter"``).

    Raises:
        ValueError: listing every missing part, path or shape mismatch, or out-of-range task index.
    """
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
        problems += _check_same_structure(part, source_params[part], target_params[part], drop_task_axis=True)
        n_src = jax.tree.leaves(source_params[part])[0].shape[0]
        n_tgt = jax.tree.leaves(target_params[part])[0].shape[0]
        for t, s in head_map.items():
            if not (0 <= t < n_tgt and 0 <= s < n_src):
                problems.append(f"head_map {t}: {s} out of range: target has {n_tgt} tasks, source {n_src}")
    if problems:
        raise ValueError("cannot splice parameters:\n  " + "\n  ".join(problems))

    out = dict(target_params)
    for part in parts:
        out[part] = jax.tree.map(jnp.array, source_params[part])  # fresh buffers: no aliasing of the source
    for part in head_map_parts if head_map else ():
        targets = jnp.array(list(head_map.keys()))
        sources = jnp.array(list(head_map.values()))
        out[part] = jax.tree.map(lambda t, s: t.at[targets].set(s[sources]), target_params[part], source_params[part])
    return out
