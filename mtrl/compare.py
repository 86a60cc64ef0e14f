"""Compare runs' evaluation curves: one figure, one table, one JSON (`mtrl compare`).

A *variant* is one labelled arm of the comparison: one run directory, or several whose tasks together make one
agent's results (five single-game runs as "single" beside one five-game run), or runs of one setting with other
seeds, pooled. Tasks are matched by their spec as
eval.csv names them; steps are env steps per task, so one-task and multi-task runs share the axis. Per task the
table compares every variant at the last step all of them reached (the smallest of their last evaluated steps; a
variant evaluated on another schedule at its last evaluation before it, and the table says so), or at ``step``:
IQM over seeds with its 95% bootstrap interval, and for each variant after the first the probability that one of
its seeds beats one of the first variant's (Agarwal et al. 2021). Runs still training can be compared: each
contributes the evaluations its eval.csv holds so far.

Axes: ``E`` evaluation points, ``S`` seeds.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtrl.logger import few_seeds_note, markdown_table, write_json
from mtrl.scores import return_label
from mtrl.statistics import iqm_interval, probability_of_improvement, summarize

GLOB_CHARACTERS = "*?["


def parse_run_arguments(arguments: Sequence[str]) -> dict[str, list[str]]:
    """Command-line runs -> ``{label: [run directory, ...]}`` in order. ``DIR`` is labelled by its directory name,
    and so is each run an unlabelled pattern matches (``'runs/sweep/*'``: every setting); ``LABEL=DIR`` names it, and
    repeating a label (or a ``DIR`` pattern mtrl expands, e.g. ``single='runs/single/*'``) puts several runs in one
    variant. An existing directory is always a path, even with ``=`` in its name (a sweep's
    setting directory), and a label may hold ``=`` too: the argument is split at the first ``=`` after which a
    directory (or a pattern's match) follows."""
    variants: dict[str, list[str]] = {}
    bare: set[str] = set()  # labels taken from directory names: each names one run

    def add_bare(path: str) -> None:
        label = os.path.basename(os.path.normpath(path))
        if label in variants:
            raise ValueError(f"two variants are named {label!r} ({variants[label][0]} and {path}): label the "
                             f"runs, e.g. a={variants[label][0]} b={path}")
        bare.add(label)
        variants[label] = [os.path.normpath(path)]

    for argument in arguments:
        if os.path.isdir(argument):
            add_bare(argument)
            continue
        try:
            label, paths = _split_labelled(argument)
        except ValueError:
            matches = [p for p in _matches(argument) if os.path.exists(os.path.join(p, "eval.csv"))] if any(
                c in argument for c in GLOB_CHARACTERS) else []
            if not matches:
                raise
            for path in matches:  # an unlabelled pattern: each run it matches is a variant of its own
                add_bare(path)
            continue
        if label in bare:
            raise ValueError(f"label {label!r} is also the name of run {variants[label][0]}, given without a "
                             f"label: label that one too (e.g. other={variants[label][0]})")
        variants.setdefault(label, []).extend(p for p in paths if p not in variants.get(label, []))
    if not variants:
        raise ValueError("no runs to compare: give at least one run directory")
    return variants


def _split_labelled(argument: str) -> tuple[str, list[str]]:
    """``LABEL=DIR`` or ``LABEL=PATTERN`` -> (label, run directories), split at the first ``=`` that leaves a label
    without ``/`` and an existing directory or matching pattern after it."""
    splits = [i for i, c in enumerate(argument) if c == "=" and i > 0 and "/" not in argument[:i]]
    for i in splits:
        path = argument[i + 1:]
        if os.path.isdir(path) or (any(c in path for c in GLOB_CHARACTERS) and _matches(path)):
            return argument[:i], resolve_runs(argument[:i], path)
    if not splits:
        raise ValueError(f"run {argument!r} is not a directory; give DIR or LABEL=DIR (LABEL=PATTERN for several "
                         "runs, e.g. single='runs/single/*')")
    i = splits[0]
    return argument[:i], resolve_runs(argument[:i], argument[i + 1:])  # raises: nothing exists there


def _matches(pattern: str) -> list[str]:
    return sorted(os.path.normpath(p) for p in glob.glob(pattern) if os.path.isdir(p))


def resolve_runs(label: str, pattern: str) -> list[str]:
    """The run directories ``pattern`` names for variant ``label``: itself when it is a directory, else its
    matches as a glob pattern (sorted)."""
    if os.path.isdir(pattern):
        return [os.path.normpath(pattern)]
    if any(c in pattern for c in GLOB_CHARACTERS):
        paths = _matches(pattern)
        if not paths:
            raise ValueError(f"run pattern {pattern!r} (label {label!r}) matches no directory"
                             + (" (a literal [ in a pattern is written [[])" if "[" in pattern else ""))
        return paths
    raise ValueError(f"run directory {pattern!r} (label {label!r}) does not exist")


def read_run_curves(run_dir: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """A run's curves ``{task: (steps [E], returns [E, S])}`` and its evaluation ε. A run still training may be
    writing its last evaluation: a last step some seeds or tasks lack is left out; an earlier one is an error."""
    from mtrl.plots import _eval_epsilon, read_eval_csv

    csv_path = os.path.join(run_dir, "eval.csv")
    if not os.path.exists(csv_path):
        hint = ("; a study's or sweep's runs are its subdirectories" if any(
            os.path.exists(os.path.join(run_dir, d, "eval.csv")) for d in sorted(os.listdir(run_dir))
            if os.path.isdir(os.path.join(run_dir, d))) else "")
        raise ValueError(f"run {run_dir!r} has no eval.csv (nothing evaluated yet, or not an mtrl run){hint}")
    steps, returns, tasks = read_eval_csv(csv_path)
    curves = {}
    for t, task in enumerate(tasks):
        complete = ~np.isnan(returns[:, :, t]).any(axis=1)
        written = int(np.flatnonzero(complete)[-1]) + 1 if complete.any() else 0
        if not complete[:written].all():  # only the evaluation being written may lack rows
            gap = steps[np.flatnonzero(~complete[:written])[0]]
            raise ValueError(f"run {run_dir!r}: eval.csv lacks a return of {task!r} at step {gap} (a seed's row is "
                             "missing or not a number), though later steps have them all")
        if written:
            curves[task] = (steps[:written], returns[:written, :, t])
    epsilon = _eval_epsilon(run_dir) if os.path.exists(os.path.join(run_dir, "config.json")) else 0.0
    return curves, epsilon


def _run_seeds(run_dir: str, count: int) -> list:
    """The seeds of a run's eval.csv columns: config.json's, in order (positions where it has none)."""
    from mtrl.provenance import read_config_json

    seeds = list(read_config_json(run_dir).get("seeds") or [])
    return seeds if len(seeds) == count else [f"{os.path.basename(run_dir)}#{i}" for i in range(count)]


def _variant_curves(label: str, run_dirs: Sequence[str]) -> tuple[dict[str, dict[str, Any]], float]:
    """One variant's tasks ``{task: {"runs", "seeds", "steps" [E], "returns" [E, S]}}`` from its runs: a task in one
    run, or in several with other seeds (their seeds pooled, at the evaluation steps they share), and the evaluation
    ε the runs share."""
    tasks: dict[str, dict[str, Any]] = {}
    epsilons = {}
    for run_dir in run_dirs:
        curves, epsilons[run_dir] = read_run_curves(run_dir)
        for task, (steps, returns) in curves.items():
            seeds = _run_seeds(run_dir, returns.shape[1])
            if task not in tasks:
                tasks[task] = {"runs": [run_dir], "seeds": seeds, "steps": steps, "returns": returns}
                continue
            pooled = tasks[task]
            shared_seeds = sorted(set(map(str, pooled["seeds"])) & set(map(str, seeds)))
            if shared_seeds:
                raise ValueError(f"variant {label!r}: task {task!r} has seed(s) {shared_seeds} in two of its runs "
                                 f"({', '.join(pooled['runs'])} and {run_dir}): a variant pools only other seeds; "
                                 "give the runs different labels to compare them")
            common = np.intersect1d(pooled["steps"], steps)
            if not len(common):
                raise ValueError(f"variant {label!r}: task {task!r}'s runs ({', '.join(pooled['runs'])} and "
                                 f"{run_dir}) share no evaluation step, so their seeds cannot be pooled")
            mine, theirs = np.isin(pooled["steps"], common), np.isin(steps, common)
            tasks[task] = {"runs": [*pooled["runs"], run_dir], "seeds": [*pooled["seeds"], *seeds], "steps": common,
                           "returns": np.concatenate([pooled["returns"][mine], returns[theirs]], axis=1)}
    if len(set(epsilons.values())) > 1:
        raise ValueError(f"variant {label!r}: its runs evaluate at different ε ({_epsilons(epsilons)}): their returns "
                         "are not the same measure")
    return tasks, next(iter(epsilons.values()))


def _epsilons(epsilons: Mapping[str, float]) -> str:
    return ", ".join(f"{name}: {epsilon:g}" for name, epsilon in epsilons.items())


def compare_runs(runs: Mapping[str, str | Sequence[str]] | Sequence[str], out_dir: str = ".", step: int | None = None,
                 tasks: Sequence[str] = ()) -> dict[str, Any]:
    """Compare the evaluation curves of ``runs`` (``{label: run directory or directories}``, or command-line
    arguments as `parse_run_arguments` reads them); writes ``compare.png`` (one panel per task, a line per
    variant: mean and 95% bootstrap band across seeds), ``compare.md`` and ``compare.json`` to ``out_dir`` and
    returns the JSON's content (per task: ``step``, each variant's evaluated ``steps``, its ``variants``' summaries
    and ``probability_of_improvement`` over the first variant). ``step``: compare every task at this evaluation step,
    which every variant must have evaluated (default: per task, the last step every variant reached); ``tasks``:
    only these. Raises ValueError (before writing anything) for a missing run, a run in two variants, a seed of one
    task in two runs of a variant, variants evaluated at different ε, or a ``step`` a variant lacks."""
    from mtrl.plots import plot_variant_curves

    if isinstance(runs, str):
        runs = [runs]
    if not isinstance(runs, Mapping):
        variants = parse_run_arguments(runs)
    else:
        variants = {}
        for label, patterns in runs.items():
            paths = [path for pattern in ([patterns] if isinstance(patterns, str) else patterns)
                     for path in resolve_runs(label, pattern)]
            if not paths:
                raise ValueError(f"variant {label!r} has no runs")
            variants[label] = list(dict.fromkeys(paths))
    if not variants:
        raise ValueError("no runs to compare: give at least one run directory")
    owner: dict[str, str] = {}
    for label, run_dirs in variants.items():
        for run_dir in run_dirs:
            key = os.path.realpath(run_dir)
            if owner.setdefault(key, label) != label:
                raise ValueError(f"run {run_dir} is in two variants ({owner[key]!r} and {label!r}): a run compared "
                                 "with itself says nothing")
    curves, epsilons = {}, {}
    for label, run_dirs in variants.items():
        curves[label], epsilons[label] = _variant_curves(label, run_dirs)
    if len(set(epsilons.values())) > 1:
        raise ValueError(f"the variants evaluate at different ε ({_epsilons(epsilons)}): their returns are not the "
                         "same measure; compare runs trained with the same --eval-epsilon")
    names = list(dict.fromkeys(task for tasks_of in curves.values() for task in tasks_of))
    if tasks:
        unknown = [task for task in tasks if task not in names]
        if unknown:
            raise ValueError(f"tasks {unknown} are in none of the runs; their tasks: {names}")
        names = [task for task in names if task in tasks]
    if not names:
        raise ValueError("the runs have no evaluations yet")
    labels = list(curves)
    rows = {}
    for task in names:
        present = [label for label in labels if task in curves[label]]
        evaluated = {label: curves[label][task]["steps"].tolist() for label in present}
        if step is not None:
            lacking = [label for label in present if step not in evaluated[label]]
            if lacking:
                common = sorted(set.intersection(*map(set, evaluated.values())))
                raise ValueError(f"step {step}: variant(s) {lacking} have no evaluation of {task!r} there; steps all "
                                 f"variants evaluated: {common or 'none'}")
        at = step if step is not None else min(steps[-1] for steps in evaluated.values())
        used = {label: max((s for s in evaluated[label] if s <= at), default=None) for label in present}
        finals = {label: curves[label][task]["returns"][evaluated[label].index(used[label])]
                  for label in present if used[label] is not None}
        row: dict[str, Any] = {"step": at, "steps": {label: used[label] for label in finals},
                               "variants": {label: summarize(values) for label, values in finals.items()},
                               "probability_of_improvement": {}}
        first = labels[0]
        if first in finals:
            row["probability_of_improvement"] = {
                label: probability_of_improvement(finals[label][:, None], finals[first][:, None])
                for label in finals if label != first}
        rows[task] = row
    result = {
        "settings_that_differ": settings_that_differ(variants),
        "measure": return_label(epsilons[labels[0]]),
        "eval_epsilon": epsilons[labels[0]],
        "variants": {label: {task: {"runs": data["runs"], "seeds": int(data["returns"].shape[1]),
                                    "last_step": int(data["steps"][-1])}
                             for task, data in curves[label].items() if task in names} for label in labels},
        "tasks": rows,
    }
    os.makedirs(out_dir, exist_ok=True)
    plot_variant_curves({label: {task: (data["steps"], data["returns"]) for task, data in curves[label].items()}
                         for label in labels}, names, os.path.join(out_dir, "compare.png"),
                        ylabel=result["measure"],
                        title=f"{', '.join(labels)}: mean {result['measure']}, 95% bootstrap band over seeds")
    with open(os.path.join(out_dir, "compare.md"), "w", newline="") as f:
        f.write(comparison_markdown(result))
    write_json(os.path.join(out_dir, "compare.json"), result)
    return result


def settings_that_differ(variants: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """``{setting: {label: value}}`` for the config.json settings whose values differ between variants (a variant
    whose runs disagree on one shows ``"varies"``); runs without a config.json count as having no settings."""
    from mtrl.provenance import read_config_json

    values: dict[str, dict[str, Any]] = {}
    for label, run_dirs in variants.items():
        configs = [read_config_json(run_dir).get("config") or {} for run_dir in run_dirs]
        for name in sorted({key for config in configs for key in config}):
            seen = [json.dumps(config.get(name)) for config in configs]
            values.setdefault(name, {})[label] = configs[0].get(name) if len(set(seen)) == 1 else "varies"
    return {name: by_label for name, by_label in values.items()
            if len({json.dumps(by_label.get(label)) for label in variants}) > 1}


def comparison_markdown(result: Mapping[str, Any]) -> str:
    """compare.md: the per-task table and the runs each variant's tasks came from."""
    labels = list(result["variants"])
    first = labels[0]
    header = ["task", "step", *labels, *(f"P({label} > {first})" for label in labels[1:])]
    rows = []
    for task, row in result["tasks"].items():
        cells = []
        for label in labels:
            summary = row["variants"].get(label)
            if summary is None:
                cells.append("—")
            else:
                low, high = iqm_interval(summary)
                at = row["steps"][label]
                cells.append(f"{summary['iqm']:.4g} [{low:.4g}, {high:.4g}]"
                             + ("" if at == row["step"] else f" (at {at:,})"))
        odds = [f"{row['probability_of_improvement'][label]:.2f}" if label in row["probability_of_improvement"]
                else "—" for label in labels[1:]]
        rows.append([task, f"{row['step']:,}", *cells, *odds])
    runs = [[label, task, ", ".join(info["runs"]), info["seeds"], f"{info['last_step']:,}"]
            for label, tasks in result["variants"].items() for task, info in tasks.items()]
    fewest = min((info["seeds"] for tasks in result["variants"].values() for info in tasks.values()), default=5)
    caveat = few_seeds_note(fewest)
    differ = result.get("settings_that_differ") or {}
    settings = ("\n## Settings that differ\n\n" + markdown_table(
        ["setting", *labels], [[name, *(json.dumps(by_label.get(label)) for label in labels)]
                               for name, by_label in differ.items()]) if differ else
                "\nThe variants' runs share every setting in their config.json.\n")
    return (f"# Comparison: {', '.join(labels)}\n\n"
            f"Per task, each variant's {result['measure']} at the step in its row (env steps per task; by default "
            f"the last step every variant reached), or at its last evaluation before that step where it says so: "
            f"IQM over seeds with its 95% bootstrap interval. P(X > {first}): the probability that a seed of X "
            f"scores above a seed of {first} there (ties count ½).\n\n"
            + markdown_table(header, rows) + (f"\n{caveat}\n" if caveat else "") + settings
            + "\n## Runs\n\n" + markdown_table(["variant", "task", "run directory", "seeds", "last evaluated step"],
                                               runs))
