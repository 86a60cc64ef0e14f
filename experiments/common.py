"""Shared pieces of the experiment modules: a study's command line, its seeds, and where its results go.

Seeds: settings are chosen by looking at some seeds and reported on others. Every experiment declares the seeds
its settings were chosen on (``tuned_on``); reported runs start at `HELD_OUT_FIRST_SEED` by default, and the
results say whether the reported seeds overlap the tuning ones.

Settings: the quickstart and the robustness study use the library defaults; the other studies keep one-step
targets, a 10k replay, lr decayed to 0 and an ε floor of 0.05 (`EARLIER_DEFAULTS`), the learner their published
results were made with.

Results: ``write_study_results`` writes ``<run dir>/<stem>.{json,md}`` with a provenance header (command, seeds,
host, package versions); ``--publish`` also writes them to ``docs/results/<study>.md`` and
``docs/results/<study>/<stem>.json``, which is how the files in docs/results are made.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mtrl.config import ConfigError, DQNConfig
from mtrl.logger import default_run_dir, environment_info, host_description, source_description, write_json

# The library defaults the published studies (other than the quickstart and robustness) were made with: one-step
# targets, a 10k replay per task, lr decayed to 0, ε floor 0.05. The defaults moved to the robustness study's choice
# (3-step targets, 50k replay, lr to half, ε to 0.01) after those results were made.
EARLIER_DEFAULTS = {"n_step": 1, "buffer_size": 10_000, "lr_end_fraction": 0.0, "eps_end": 0.05}

# Reported seeds start here; experiment settings are chosen on seeds below it.
HELD_OUT_FIRST_SEED = 1000
DOCS_RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "results")


@dataclasses.dataclass(frozen=True)
class StudyArgs:
    """A study's parsed command line."""

    name: str
    config: DQNConfig
    seeds: list[int]
    tuned_on: tuple[int, ...]
    out: str
    rerun: bool
    publish: bool
    options: dict
    checkpoint_every: int | None = None  # env steps per task; None: `CheckpointOptions`'s default

    @property
    def checkpoints(self):
        """The `mtrl.trainer.CheckpointOptions` of every run of the study."""
        from mtrl.trainer import CheckpointOptions

        if self.checkpoint_every is None:
            return CheckpointOptions()
        return CheckpointOptions(every=self.checkpoint_every)

    @property
    def held_out(self) -> bool:
        return not set(self.seeds) & set(self.tuned_on)

    def seeds_note(self) -> str:
        """One sentence for a results file: which seeds chose the settings and which are reported."""
        overlap = sorted(set(self.seeds) & set(self.tuned_on))
        tuned = _ranges(self.tuned_on) if self.tuned_on else "no seeds (set a priori)"
        note = f"Settings chosen on {tuned}; reported on {_ranges(self.seeds)}"
        if overlap:
            return note + f" — NOT held out: {_ranges(overlap)} also chose the settings."
        return note + " (held out)."


def _ranges(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0–2, 5"``."""
    seeds = sorted(set(int(s) for s in seeds))
    parts, start = [], None
    for i, s in enumerate(seeds):
        start = s if start is None else start
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            parts.append(f"{start}–{s}" if s > start else f"{s}")
            start = None
    return ("seeds " if len(seeds) > 1 else "seed ") + ", ".join(parts) if seeds else "no seeds"


# The settings a study's command line sets (the config's and `train`'s), with their flags.
STUDY_FLAGS = {"total_steps": "--total-steps", "checkpoints.every": "--checkpoint-every"}


def run(main: Callable[[], object]) -> None:
    """An experiment's command: ``main()``, where a setting the study cannot run (`ConfigError`, raised before its
    runs train) ends as a usage error naming it (``--total-steps`` as the flag), exit status 2, and a study stopped
    by Ctrl-C or SIGTERM (its run saved, `train_or_reuse`) as one line saying how to continue, exit status 130; not
    a traceback. mtrl's warnings (a smoke budget's run without updates) are one ``SCRIPT: warning: ...`` line each,
    as `mtrl`'s are (`mtrl.cli.mtrl_warnings`)."""
    from mtrl.cli import mtrl_warnings

    prog = os.path.basename(sys.argv[0])
    try:
        with mtrl_warnings(prog, STUDY_FLAGS):
            main()
    except ConfigError as e:
        print(f"{prog}: error: {e.with_flags(STUDY_FLAGS)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as e:
        print(f"{prog}: stopped: {str(e) or 'interrupted'}", file=sys.stderr)
        raise SystemExit(130) from None


def with_total_steps(parser: argparse.ArgumentParser, config: DQNConfig, total_steps: int) -> DQNConfig:
    """``config`` with the ``--total-steps`` given, checked while parsing: a value the config cannot run is a usage
    error of ``parser`` (exit 2) naming the flag, not a traceback from inside the study."""
    config = dataclasses.replace(config, total_steps=total_steps)
    try:
        with warnings.catch_warnings():  # a run without updates is the study's own choice (smokes): warned later
            warnings.simplefilter("ignore", UserWarning)
            config.validate()
    except ConfigError as e:  # named by its flag where it is one of STUDY_FLAGS
        parser.error(e.with_flags(STUDY_FLAGS))
    return config


def parse_study_args(doc: str, name: str, config: DQNConfig, argv: list[str] | None = None, seeds: int = 10,
                     tuned_on: Sequence[int] = (), extra: dict[str | tuple[str, ...], dict] | None = None,
                     first_seed: int = HELD_OUT_FIRST_SEED,
                     checkpoint_every: int | None = None, checkpointed: bool = True) -> StudyArgs:
    """``--seeds``, ``--seed``, ``--total-steps``, ``--run-dir``, ``--rerun``, ``--publish`` of a study,
    ``--checkpoint-every`` when its runs are ``checkpointed`` (default ``checkpoint_every``), plus the study's own
    options ``extra`` (flag, or a tuple of a flag and its aliases -> `add_argument` keywords; values in
    `StudyArgs.options` by dest)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=seeds, help=f"number of seeds (default {seeds})")
    parser.add_argument("--seed", type=int, default=first_seed,
                        help=f"first seed (default {first_seed}"
                             + (": held out from the seeds the settings were chosen on)"
                                if first_seed == HELD_OUT_FIRST_SEED else ")"))
    parser.add_argument("--total-steps", type=int, default=config.total_steps, help="env steps per task")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--rerun", action="store_true",
                        help="retrain parts of the study whose runs in --run-dir were trained with other settings "
                             "(they are moved aside) instead of refusing")
    parser.add_argument("--publish", action="store_true",
                        help="also write the results to docs/results/<study>.md and docs/results/<study>/")
    if checkpointed:
        parser.add_argument("--checkpoint-every", type=int, default=checkpoint_every,
                            help="env steps per task between checkpoints (default: "
                                 + (f"{checkpoint_every:,}" if checkpoint_every is not None else "train's")
                                 + "; 0 = only at the end of each run); a stopped study resumes from the last one")
    for flags, kwargs in (extra or {}).items():
        parser.add_argument(*((flags,) if isinstance(flags, str) else flags), **kwargs)
    args = parser.parse_args(argv)
    from mtrl.trainer import CheckpointOptions, seed_flags_error

    error = seed_flags_error(args.seed, args.seeds)
    if error:
        parser.error(error)
    checkpoint_every = getattr(args, "checkpoint_every", None)
    if checkpoint_every is not None:
        try:
            CheckpointOptions(every=checkpoint_every).validate()
        except ConfigError as e:
            parser.error(e.with_flags(STUDY_FLAGS))
    config = with_total_steps(parser, config, args.total_steps)
    common = ("seeds", "seed", "total_steps", "run_dir", "rerun", "publish", "checkpoint_every")
    _parsed.update(argv=sys.argv[1:] if argv is None else list(argv), out=args.run_dir or default_run_dir(name))
    return StudyArgs(
        name=name,
        config=config,
        seeds=list(range(args.seed, args.seed + args.seeds)),
        tuned_on=tuple(tuned_on),
        out=_parsed["out"],
        rerun=args.rerun,
        publish=args.publish,
        options={k: v for k, v in vars(args).items() if k not in common},
        checkpoint_every=checkpoint_every,
    )


def run_wall_s(summary: dict) -> float | None:
    """A run's wall seconds over all its sittings where its summary knows them, else its last sitting's; None
    when neither is known (a summary written from a checkpoint without timing)."""
    all_sittings = summary.get("wall_s_all_sittings")
    return all_sittings if all_sittings is not None else summary.get("wall_s")


def runs_timing(roots: Sequence[str]) -> dict:
    """The training time of a study from its finished runs under ``roots`` (the same whether they were trained now
    or reused; runs moved aside are not counted): ``wall_s`` summed over runs and over each run's sittings,
    ``runs``, ``partial`` (resumed runs whose earlier sittings' time is unknown: only their last sitting counts)
    ``devices`` (where the runs trained, from their config.json) and ``code`` (the source revisions they trained
    from, `mtrl.logger.source_description`)."""
    total, count, partial, devices, code, seen = 0.0, 0, 0, set(), set(), set()
    for directory, _, files in (entry for root in roots for entry in os.walk(root)):
        if "summary.json" in files and ".replaced-" not in directory and os.path.realpath(directory) not in seen:
            seen.add(os.path.realpath(directory))  # a run named twice, or inside another root, counts once
            with open(os.path.join(directory, "summary.json")) as f:
                summary = json.load(f)
            known = run_wall_s(summary)
            partial += summary.get("wall_s_all_sittings") is None and ("resumed_from_step" in summary
                                                                          or known is None)
            total += float(known or 0.0)
            count += 1
            with open(os.path.join(directory, "config.json")) as f:
                meta = json.load(f)
            sittings = [meta, *meta.get("resumes", [])]
            devices.update(_machine(sitting) for sitting in sittings)
            code.update(source_description(sitting) or "code not recorded" for sitting in sittings)
    return {"wall_s": total, "runs": count, "partial": partial, "devices": sorted(devices), "code": sorted(code)}


def _machine(info: dict) -> str:
    """Where a sitting of a run trained, from its config.json record: the accelerator, or the CPU; jax version."""
    device = info.get("device") or {}
    where = device.get("kind") if device.get("backend", "cpu") != "cpu" else host_description(info)
    return f"{where} (jax {info.get('versions', {}).get('jax', '?')})"


# The command line `parse_study_args` read last: its arguments and the study's directory they resolved to.
_parsed: dict[str, Any] = {"argv": [], "out": None}


def study_command(name: str, continuing: bool = False) -> str:
    """The shell line that ran experiment ``name`` (``python -m experiments.NAME ARGS``, the arguments the study
    parsed), for results files; ``continuing``: the line that continues it from any working directory (its
    ``--run-dir`` the study's directory as an absolute path, also where a default one was used), for each run's
    config.json, where `mtrl status` shows it."""
    from mtrl.cli import without_flags

    argv = list(_parsed["argv"])
    if continuing and _parsed["out"] is not None:
        argv = without_flags(argv, {"--run-dir": 1}) + ["--run-dir", os.path.abspath(_parsed["out"])]
    return " ".join(["python", "-m", f"experiments.{name}", *(shlex.quote(a) for a in argv)])


def provenance_header(args: StudyArgs, runs: Sequence[str] | None = None) -> str:
    """Markdown lines saying how a results file was made: command, seeds, host, package versions, and the
    training time, devices and code of ``runs`` (run directories; default: every run under the study's directory)."""
    info = environment_info()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    host = host_description(info)
    lines = [f"- command: `{study_command(args.name)}`", f"- seeds: {args.seeds_note()}", f"- host: {host}",
             f"- versions: Python {info['python']}, {versions}",
             f"- code: {source_description(info) or 'not a git checkout'}",
             f"- written: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}"]
    timing = runs_timing(runs if runs is not None else [args.out])
    if timing["runs"]:
        n = timing["runs"]
        lines.append(f"- runs trained on: {'; '.join(timing['devices'])}")
        lines.append(f"- runs trained from: {'; '.join(timing['code'])}")
        lines.append(f"- training wall time: {timing['wall_s'] / 60:.1f} min (sum over the {n} run{'s' * (n > 1)}"
                     " and their sittings, from their summary.json"
                     + (f"; only the last sitting of {timing['partial']} resumed run{'s' * (timing['partial'] > 1)}, "
                        "whose earlier sittings were not recorded" if timing["partial"] else "") + ")")
    return "\n".join(lines) + "\n"


def portable_paths(data, root: str):
    """``data`` with every string that is an absolute path inside ``root`` made relative to it (run directories
    recorded by a study), so a results file names no directory of the host that wrote it."""
    if isinstance(data, dict):
        return {key: portable_paths(value, root) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [portable_paths(value, root) for value in data]
    if isinstance(data, str) and os.path.isabs(data):
        path = os.path.normpath(data)
        if os.path.commonpath([path, root]) == root:
            return os.path.relpath(path, root)
    return data


def write_study_results(args: StudyArgs, stem: str, data: dict, text: str, title: str,
                        figures: dict[str, str] | None = None, page: str | None = None,
                        runs: Sequence[str] | None = None) -> None:
    """Write ``out/<stem>.json`` (``data`` plus provenance; paths relative to the working directory) and
    ``out/<stem>.md`` (title, provenance header, ``text``), print the text; with ``--publish`` also
    docs/results/<page>.md (default: the study's name),
    docs/results/<study>/<stem>.json and the ``figures`` (name -> path of a file the study wrote), shown at the end
    of the published page. ``runs``: the run directories the results come from, whose training time the header
    sums (default: every run under ``out``; a study whose directory also holds another page's runs names its own)."""
    os.makedirs(args.out, exist_ok=True)
    data = {**data, "seeds": args.seeds, "tuned_on": list(args.tuned_on), "held_out": args.held_out,
            "command": ["python", "-m", f"experiments.{args.name}", *_parsed["argv"]], **environment_info()}
    data = portable_paths(data, os.path.abspath(os.getcwd()))
    markdown = f"# {title}\n\n{provenance_header(args, runs)}\n{text}"
    targets = [(os.path.join(args.out, f"{stem}.json"), os.path.join(args.out, f"{stem}.md"))]
    if args.publish:
        targets.append((os.path.join(DOCS_RESULTS, args.name, f"{stem}.json"),
                        os.path.join(DOCS_RESULTS, f"{page or args.name}.md")))
    for i, (json_path, md_path) in enumerate(targets):
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        write_json(json_path, data)
        content = markdown
        if i and figures:  # the published page shows the figures copied beside it
            for name, path in figures.items():
                shutil.copyfile(path, os.path.join(os.path.dirname(json_path), name))
                content += f"\n![{name}]({args.name}/{name})\n"
        with open(md_path, "w") as f:
            f.write(content)
    print(markdown)
    print(f"results: {args.out}" + (f" and {DOCS_RESULTS}/{page or args.name}.md" if args.publish else ""))


def scale_budget(config: DQNConfig, steps: int, reference_steps: int) -> DQNConfig:
    """``config`` with ``total_steps`` scaled by ``steps / reference_steps`` (at least 1): a study's source
    budget follows the ``--total-steps`` given for its targets."""
    return dataclasses.replace(config, total_steps=max(config.total_steps * steps // reference_steps, 1))


def train_or_reuse(tasks: list[str], config: DQNConfig, seeds: list[int], run_dir: str, rerun: bool,
                   experiment: str, **kwargs):
    """Train ``tasks`` into ``run_dir``, or reuse / resume the run there when it is the same experiment (config,
    tasks, seeds); a different one is refused with every difference, or moved aside with ``rerun``.

    Returns the run's summary. A run stopped by SIGINT/SIGTERM (or ``stop_at_step``) raises `KeyboardInterrupt`
    after its checkpoint is saved, so a study stops instead of starting its next run."""
    from mtrl.provenance import prepare_reuse, run_identity, saved_run_identity
    from mtrl.trainer import train
    from mtrl.transfer import resume_run

    expected = run_identity(dataclasses.asdict(config), tasks, seeds)
    status = prepare_reuse(run_dir, saved_run_identity, expected, rerun)
    if status == "finished":
        with open(os.path.join(run_dir, "summary.json")) as f:
            return json.load(f)
    if status == "interrupted":
        result = resume_run(run_dir, **kwargs)
    else:
        result = train(tasks, config, seeds=seeds, run_dir=run_dir,
                       extra_metadata={"experiment": experiment,
                                       "command": study_command(experiment, continuing=True)}, **kwargs)
    if result.stopped_at is not None:  # a signal stops the whole study, not just this run
        raise KeyboardInterrupt(f"{experiment}: {run_dir} stopped at {result.stopped_at:,} env steps per task "
                                "(checkpoint saved); rerun the same command to continue")
    return result.summary


def finished_run(tasks: list[str], config: DQNConfig, seeds: list[int], run_dir: str) -> dict | None:
    """The summary of the finished run of this experiment in ``run_dir``, or None when it is not finished there
    (nothing is trained or moved); a finished run of another experiment is refused with every difference."""
    from mtrl.provenance import (
        ProvenanceMismatchError,
        identity_differences,
        run_identity,
        run_status,
        saved_run_identity,
    )

    if run_status(run_dir) != "finished":
        return None
    expected = run_identity(dataclasses.asdict(config), tasks, seeds)
    saved = saved_run_identity(run_dir)
    problems = identity_differences(saved, expected)
    if problems:
        raise ProvenanceMismatchError(f"{run_dir} holds a finished run of another experiment:\n  "
                                      + "\n  ".join(problems))
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f)


def train_or_collect(args: StudyArgs, tasks: list[str], config: DQNConfig, run_dir: str, **kwargs) -> dict | None:
    """`train_or_reuse` with the study's seeds and checkpoints; with ``--collect`` (``args.options["collect"]``), or
    when ``args.options["only"]`` (a set of run folders relative to the study's run dir) leaves this run out, only
    the finished run's summary, None when it is not finished."""
    only = args.options.get("only")
    if args.options.get("collect") or (only is not None and os.path.relpath(run_dir, args.out) not in only):
        return finished_run(tasks, config, args.seeds, run_dir)
    return train_or_reuse(tasks, config, args.seeds, run_dir, args.rerun, args.name, checkpoints=args.checkpoints,
                          **kwargs)


def pretrain_and_study(args: StudyArgs, out: str, source_tasks: list[str], target_tasks: list[str],
                       source_config: DQNConfig, target_config: DQNConfig, settings=None,
                       modes: Sequence[str] | None = None, **study_kwargs) -> dict:
    """Pretrain ``source_tasks`` into ``out/source`` (reused when the same run is already there), then run every
    transfer mode on ``target_tasks`` into ``out/study`` (see `mtrl.study.transfer_study`; ``study_kwargs`` go to
    it and may replace the study's ``checkpoints``). Rerunning continues."""
    from mtrl.study import check_modes, transfer_study
    from mtrl.transfer import MODES, TransferSettings

    transfer = settings or TransferSettings()
    modes = check_modes(modes or MODES, transfer, target_config)  # before the source trains
    source_dir = os.path.join(out, "source")
    train_or_reuse(source_tasks, source_config, args.seeds, source_dir, args.rerun, args.name,
                   checkpoints=args.checkpoints)
    return transfer_study(source_dir, target_tasks, modes=modes, config=target_config, seeds=args.seeds,
                          run_dir=os.path.join(out, "study"), transfer=transfer,
                          rerun=args.rerun, **{"checkpoints": args.checkpoints, **study_kwargs})


def publish_transfer(args: StudyArgs, studies: dict[str, dict], title: str, variant: str = "", note: str = "") -> None:
    """Write a transfer experiment's results file: each study's source summary and transfer table (``studies``:
    heading -> transfer.json content; one study may have the heading ""), after ``note`` (a paragraph, e.g. where
    the normalising reference comes from). A ``variant`` of the experiment (e.g. "popart") gets files of its own:
    results_<variant>.json, page <study>_<variant>.md, figures <variant>_*.png."""
    from mtrl.study import study_markdown

    parts, figures = [note + "\n"] if note else [], {}
    for heading, study in studies.items():
        slug = "_".join(filter(None, (variant, heading.split(":")[-1].strip().split("-")[0].lower())))
        curves = os.path.join(os.path.dirname(study["source_run"]), "study", "transfer_curves.png")
        if os.path.exists(curves):
            figures[f"{slug + '_' if slug else ''}transfer_curves.png"] = curves
        source = os.path.join(study["source_run"], "summary.md")
        source_text = ""
        if os.path.exists(source):
            with open(source) as f:
                source_text = f.read()
        parts.append((f"## {heading}\n\n" if heading else "") + "Source run, final greedy return:\n\n" + source_text
                     + "\nTransfer vs scratch:\n\n" + study_markdown(study))
    write_study_results(args, "_".join(filter(None, ("results", variant))), {"studies": studies}, "\n".join(parts),
                        title, figures, page="_".join(filter(None, (args.name, variant))),
                        runs=[run for study in studies.values() for run in study_runs(study)])


def study_runs(study: dict) -> list[str]:
    """The run directories a `pretrain_and_study` study's results come from: its source and its modes' runs
    (``out/source``, ``out/study/<mode>``; not the runs of modes left out this time)."""
    study_dir = os.path.join(os.path.dirname(study["source_run"]), "study")
    return [study["source_run"], *(os.path.join(study_dir, mode) for mode in study["modes"])]
