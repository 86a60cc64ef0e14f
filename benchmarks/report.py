"""Collect every benchmark's Markdown table into docs/benchmarks.md (the `make bench` page).

    python -m benchmarks.report [--results benchmarks/results] [--out docs/benchmarks.md]

Copies, verbatim, each ``<results>/*.md`` written by a benchmark on a 2-core CPU host, each ``<results>/cpu-*/*.md``
a benchmark rerun on another CPU host and kept beside the top-level table of the same name (the folder names what
differs from that table's host, e.g. ``cpu-avx512``) and each ``<results>/gpu-*/*.md`` written on an accelerator,
each table under its file's heading (each file names its host or card); the numbers are only those files'
(regenerate them with the command each one states, ``--out`` naming the folder).
"""

from __future__ import annotations

import argparse
import glob
import os

ORDER = ("throughput", "scaling", "minatar", "time_to_solve")


def _key(path: str) -> tuple:
    stem = os.path.splitext(os.path.basename(path))[0]
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), stem)


def collect(results: str) -> str:
    local = sorted(glob.glob(os.path.join(results, "*.md")), key=_key)
    other_cpus, accelerators = (sorted(filter(os.path.isdir, glob.glob(os.path.join(results, pattern))))
                                for pattern in ("cpu-*", "gpu-*"))
    parts = ["# Benchmarks\n",
             "Every table below is a benchmark's own output file, copied verbatim by `python -m benchmarks.report` "
             "(run by `make bench`); each states its command, host and versions. Ratios are measured within one "
             "run; absolute rates move between hosts.\n"]
    for path in local:
        parts.append(f"<!-- {os.path.relpath(path)} -->\n" + _demote(open(path).read()))
    for heading, folders in (("On another CPU host", other_cpus), ("On an accelerator", accelerators)):
        for folder in folders:
            parts.append(f"## {heading}: `{os.path.relpath(folder)}`\n")
            for path in sorted(glob.glob(os.path.join(folder, "*.md")), key=_key):
                parts.append(f"<!-- {os.path.relpath(path)} -->\n" + _demote(open(path).read(), levels=2))
    return "\n".join(parts)


def _demote(markdown: str, levels: int = 1) -> str:
    """Headings one (or ``levels``) level(s) down, so each file's title nests under the page's."""
    return "\n".join("#" * levels + line if line.startswith("#") else line for line in markdown.splitlines()) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--out", default="docs/benchmarks.md")
    args = parser.parse_args()
    with open(args.out, "w") as f:
        f.write(collect(args.results))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
