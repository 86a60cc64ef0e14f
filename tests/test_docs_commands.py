"""Every `python -m mtrl ...`, `python -m experiments.<study> ...` and `python -m benchmarks.<name> ...` command the
README and docs/ show (in code blocks, and inline where it has no placeholder) parses with today's command lines: a
renamed or removed flag fails here, not in a reader's first hour. Parsing only: tyro builds the `mtrl` command, and a
script stops as soon as argparse has parsed its arguments; nothing trains."""

import argparse
import glob
import importlib
import os
import re
import shlex
import sys
from unittest import mock

import pytest
import tyro

from mtrl.cli import COMMANDS, seeds_list_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", *sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))]
PROGRAM = re.compile(r"python -m (mtrl|experiments\.\w+|benchmarks\.\w+)(?=\s|$)(.*)")
PLACEHOLDER = re.compile(r"\.\.\.|[\[\]|<>]|\b(DIR|RUN|SPEC|N|K|R|MODE|LOSS|D)\b")  # a form, not a command


def page_commands(text: str) -> list[str]:
    """The commands of ``text`` as ``PROGRAM ARGS`` (``mtrl train ...``, ``experiments.quickstart ...``): lines of
    fenced code blocks (continuations joined, comments dropped) and inline code spans without a placeholder."""
    commands, in_block, pending = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            commands += [span for span in re.findall(r"`(python -m [^`]+)`", line) if not PLACEHOLDER.search(span)]
            continue
        line = pending + line.split(" #")[0].strip()
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        commands += [line[line.index("python -m "):]] if "python -m " in line else []
    return [(match[1] + match[2]).strip() for c in commands if (match := PROGRAM.search(c))]


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        with open(os.path.join(ROOT, page)) as f:
            found += [(page, command) for command in dict.fromkeys(page_commands(f.read()))]
    return found


COMMANDS_SHOWN = documented_commands()


def test_the_pages_show_commands_and_the_extraction_reads_blocks_and_inline_spans():
    programs = {command.split()[0] for _, command in COMMANDS_SHOWN}
    assert len(COMMANDS_SHOWN) >= 40 and "mtrl" in programs and "benchmarks.minatar" in programs
    assert sum(p.startswith("experiments.") for p in programs) >= 6
    text = ("```bash\npython -m mtrl train --suite classic \\\n    --seeds 2   # two\n```\n"
            "Run `python -m experiments.quickstart --publish` or `python -m mtrl evaluate DIR` (a form).\n")
    assert page_commands(text) == ["mtrl train --suite classic --seeds 2", "experiments.quickstart --publish"]


class Parsed(Exception):
    pass


@pytest.mark.parametrize("page, command", COMMANDS_SHOWN)
def test_a_documented_command_parses(page, command, monkeypatch):
    program, *argv = shlex.split(command)
    if program == "mtrl":
        assert seeds_list_error(argv) is None
        try:
            parsed = tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="mtrl", args=argv)
        except SystemExit as exc:
            if "--help" in argv and exc.code == 0:
                return
            pytest.fail(f"{page}: `python -m mtrl {command}` does not parse (tyro's message above)")
        assert type(parsed).__name__.lower() == argv[0]
        return
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [program, *argv])
    with mock.patch.dict(os.environ):  # a benchmark may set its environment on import (benchmarks.scaling)
        module = importlib.import_module(program)
        try:
            module.main()
        except SystemExit:
            pytest.fail(f"{page}: `python -m {command}` does not parse (argparse's message above)")
        except Parsed:
            return
    pytest.fail(f"{program} did not parse its arguments with argparse")
