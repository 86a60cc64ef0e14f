"""`mtrl.plots`: figures a study writes while some of its runs are not finished yet."""

import matplotlib.figure
import numpy as np

from mtrl.plots import plot_compared_curves


def test_compared_curves_skip_unfinished_runs_yet_the_legend_names_every_variant(tmp_path, monkeypatch):
    """"alone" finished only for the second game (NaN for the first), PopArt for both: the first panel draws PopArt
    alone, the second both, and the legend names both variants; a panel with no run says so."""
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *args, **kwargs: figures.append(fig))
    steps = np.array([0, 10, 20])
    alone = np.random.default_rng(0).normal(size=(3, 3, 3))  # [S, T, E]
    alone[:, 0] = np.nan
    popart = np.random.default_rng(1).normal(size=(3, 3, 3))
    popart[:, 2] = np.nan
    plot_compared_curves(steps, {"alone": alone, "PopArt": popart}, ["a", "b", "c"], str(tmp_path / "f.png"))
    axes = figures[0].axes
    assert [len(ax.lines) for ax in axes[:3]] == [1, 2, 1]
    legends = [ax.get_legend() for ax in axes if ax.get_legend() is not None]
    assert len(legends) == 1 and [t.get_text() for t in legends[0].get_texts()] == ["alone", "PopArt"]
    both_missing = np.full((3, 1, 3), np.nan)
    figures.clear()
    plot_compared_curves(steps, {"alone": both_missing}, ["d"], str(tmp_path / "g.png"))
    assert [t.get_text() for t in figures[0].axes[0].texts] == ["no finished run"]
