"""Plots: what a reader needs to tell apart can be told apart."""
import numpy as np

from tfclf.evaluation import report


def test_pr_curves_of_28_labels_never_share_colour_and_style(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figures.append(fig) or path)
    rng = np.random.default_rng(0)
    targets = (rng.random((300, 28)) < 0.2).astype(int)
    names = [f"label{j}" for j in range(28)]
    report.pr_curves_plot(targets, rng.random((300, 28)), names, "dev", tmp_path)
    lines = figures[0].axes[0].get_lines()
    assert len(lines) == 28
    looks = {(line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()), line.get_linestyle())
             for line in lines}
    assert len(looks) == 28
    assert [t.get_text().split(" (AP")[0] for t in figures[0].axes[0].get_legend().get_texts()] == names
