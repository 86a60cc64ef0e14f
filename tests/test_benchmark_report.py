"""`benchmarks.report`: docs/benchmarks.md is the benchmarks' own tables, verbatim, local ones first."""

from benchmarks.report import collect


def test_the_page_holds_every_table_verbatim_with_headings_nested(tmp_path):
    (tmp_path / "scaling.md").write_text("# mtrl scaling\n\n| what | result |\n|---|---|\n| 4 seeds | 1 |\n")
    (tmp_path / "throughput.md").write_text("# mtrl throughput\n\n| a | b |\n")
    (tmp_path / "gpu-h100").mkdir()
    (tmp_path / "gpu-h100" / "minatar.md").write_text("# MinAtar throughput\n\n- host: H100\n")
    (tmp_path / "cpu-avx512").mkdir()
    (tmp_path / "cpu-avx512" / "minatar.md").write_text("# MinAtar throughput\n\n- host: EPYC with AVX-512\n")
    (tmp_path / "cpu-notes.md").write_text("# Notes\n")  # a file, not a host's folder: a top-level table
    page = collect(str(tmp_path))
    assert page.count("## On another CPU host") == 1 and page.count("## Notes") == 1
    assert page.index("## mtrl throughput") < page.index("## mtrl scaling") < page.index("## On another CPU host")
    assert page.index("- host: EPYC with AVX-512") < page.index("## On an accelerator") < page.index("- host: H100")
    assert page.count("### MinAtar throughput") == 2
    assert "| 4 seeds | 1 |" in page and page.startswith("# Benchmarks")


# the benchmarks whose table is rendered by another module than benchmarks.<stem>
RENDERERS = {"time_to_solve": ("benchmarks.throughput", "render_solve_markdown")}


def test_every_published_table_is_its_json_rendered_and_the_page_is_up_to_date():
    """Each benchmarks/results/**/<stem>.md is exactly `benchmarks.<stem>.render_markdown` of the <stem>.json beside
    it (the numbers on the page come from the measurement file, nothing hand-edited), and docs/benchmarks.md is
    `collect` of them."""
    import glob
    import importlib
    import json
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = os.path.join(root, "benchmarks", "results")
    files = sorted(glob.glob(os.path.join(results, "**", "*.json"), recursive=True))
    assert len(files) >= 8  # CPU and H100: throughput, scaling, minatar, gpu_kernels
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        module, name = RENDERERS.get(stem, (f"benchmarks.{stem}", "render_markdown"))
        render = getattr(importlib.import_module(module), name)
        with open(path) as f, open(path[:-5] + ".md") as g:
            assert render(json.load(f)) == g.read(), os.path.relpath(path, root)
    cwd = os.getcwd()
    try:  # collect names files relative to the working directory, as `make bench` runs it
        os.chdir(root)
        page = collect("benchmarks/results")
    finally:
        os.chdir(cwd)
    with open(os.path.join(root, "docs", "benchmarks.md")) as f:
        assert f.read() == page
