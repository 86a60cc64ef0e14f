"""Shared pieces of the experiment modules: command-line arguments of a study."""

from __future__ import annotations

import argparse
import dataclasses

from mtrl.config import DQNConfig
from mtrl.logger import default_run_dir


def parse_study_args(doc: str, name: str, config: DQNConfig, argv: list[str] | None = None, seeds: int = 4,
                     extra: dict[str, dict] | None = None, parsed: dict | None = None):
    """``--seeds``, ``--total-steps``, ``--run-dir`` of a study -> (config, seeds, run directory).

    ``extra`` adds a study's own options (flag -> `add_argument` keywords); their values are written into
    ``parsed`` (by argparse dest)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--total-steps", type=int, default=config.total_steps, help="env steps per task")
    parser.add_argument("--run-dir", default=None)
    for flag, kwargs in (extra or {}).items():
        parser.add_argument(flag, **kwargs)
    args = parser.parse_args(argv)
    if parsed is not None:
        parsed.update({k: v for k, v in vars(args).items() if k not in ("seeds", "total_steps", "run_dir")})
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    out = args.run_dir or default_run_dir(name)
    return dataclasses.replace(config, total_steps=args.total_steps), range(args.seeds), out


def write_study_results(out: str, stem: str, data: dict, text: str) -> None:
    """Write ``out/<stem>.json`` (``data``) and ``out/<stem>.md`` (``text``), then print the text and where
    the results are."""
    import json
    import os

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"results: {out}")


def scale_budget(config: DQNConfig, steps: int, reference_steps: int) -> DQNConfig:
    """``config`` with ``total_steps`` scaled by ``steps / reference_steps`` (at least 1): a study's source
    budget follows the ``--total-steps`` given for its targets."""
    return dataclasses.replace(config, total_steps=max(config.total_steps * steps // reference_steps, 1))


def pretrain_and_study(name: str, out: str, source_tasks: list[str], target_tasks: list[str], seeds,
                       source_config: DQNConfig, target_config: DQNConfig, settings=None) -> dict:
    """Pretrain ``source_tasks`` into ``out/source`` (reused when already finished), then run every transfer
    mode on ``target_tasks`` into ``out/study`` (see `mtrl.study.transfer_study`). Rerunning continues."""
    import os

    from mtrl.study import study_markdown, transfer_study
    from mtrl.train import train
    from mtrl.transfer import TransferSettings

    source_dir = os.path.join(out, "source")
    if not os.path.exists(os.path.join(source_dir, "summary.json")):
        train(source_tasks, source_config, seeds=seeds, run_dir=source_dir, extra_metadata={"experiment": name})
    study = transfer_study(source_dir, target_tasks, config=target_config, seeds=seeds,
                           run_dir=os.path.join(out, "study"), transfer=settings or TransferSettings())
    print(study_markdown(study))
    print(f"results: {out}/study (transfer.md, transfer.json, transfer_curves.png)")
    return study
