"""Every `python -m mtrl ...` and `python -m experiments.<study> ...` command in a code block of the README and docs/
parses with today's CLI: a renamed or removed flag fails here, not in a reader's first hour. Parsing only (tyro
builds the command; a study stops right after `parse_study_args`); nothing runs."""

import glob
import importlib
import os
import shlex

import pytest
import tyro

from mtrl.cli import COMMANDS, seeds_list_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", *sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))]


def code_block_commands(text: str, program: str = "mtrl") -> list[str]:
    """The ``python -m {program}`` command lines (continuations joined, comments dropped; without that prefix) of
    the fenced code blocks of ``text``."""
    commands, in_block, pending = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        line = pending + line.split(" #")[0].strip()
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        prefix = f"python -m {program}"
        if prefix in line:
            commands.append(line[line.index(prefix) + len(prefix):].strip())
    return commands


def documented_commands(program: str = "mtrl") -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        with open(os.path.join(ROOT, page)) as f:
            found += [(page, command) for command in code_block_commands(f.read(), program)]
    return found


def test_the_pages_show_commands_and_the_extraction_joins_continued_lines():
    assert len(documented_commands()) >= 15
    text = "```bash\npython -m mtrl train --suite classic \\\n    --seeds 2   # two\n```\n`python -m mtrl gone`\n"
    assert code_block_commands(text) == ["train --suite classic --seeds 2"]
    assert len(documented_commands("experiments.")) >= 5


@pytest.mark.parametrize("page, command", documented_commands())
def test_a_documented_command_parses(page, command):
    argv = shlex.split(command)
    assert seeds_list_error(argv) is None
    if "--help" in argv:
        with pytest.raises(SystemExit) as exc:
            tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="mtrl", args=argv)
        assert exc.value.code == 0
        return
    try:
        parsed = tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="mtrl", args=argv)
    except SystemExit:
        pytest.fail(f"{page}: `python -m mtrl {command}` does not parse (tyro's message above)")
    assert type(parsed).__name__.lower() == argv[0]


class Parsed(Exception):
    pass


@pytest.mark.parametrize("page, command", documented_commands("experiments."))
def test_a_documented_study_command_parses(page, command, monkeypatch):
    module_name, *argv = shlex.split(command)
    module = importlib.import_module(f"experiments.{module_name}")

    parse = module.parse_study_args

    def parse_then_stop(*args, **kwargs):
        raise Parsed(parse(*args, **kwargs))

    monkeypatch.setattr(module, "parse_study_args", parse_then_stop)
    try:
        module.main(argv)
    except SystemExit:
        pytest.fail(f"{page}: `python -m experiments.{command}` does not parse (argparse's message above)")
    except Parsed:
        return
    pytest.fail("the study did not parse its arguments with parse_study_args")
