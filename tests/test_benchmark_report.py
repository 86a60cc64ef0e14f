"""`benchmarks.report`: docs/benchmarks.md is the benchmarks' own tables, verbatim, local ones first."""

from benchmarks.report import collect


def test_the_page_holds_every_table_verbatim_with_headings_nested(tmp_path):
    (tmp_path / "scaling.md").write_text("# mtrl scaling\n\n| what | result |\n|---|---|\n| 4 seeds | 1 |\n")
    (tmp_path / "throughput.md").write_text("# mtrl throughput\n\n| a | b |\n")
    (tmp_path / "gpu-h100").mkdir()
    (tmp_path / "gpu-h100" / "minatar.md").write_text("# MinAtar throughput\n\n- host: H100\n")
    page = collect(str(tmp_path))
    assert page.index("## mtrl throughput") < page.index("## mtrl scaling") < page.index("### MinAtar throughput")
    assert "| 4 seeds | 1 |" in page and "- host: H100" in page and page.startswith("# Benchmarks")
