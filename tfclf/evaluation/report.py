"""Plots and a Markdown report of a run: learning curves, confusion matrix, per-label F1, PR curves,
and the most confident mistakes explained.

Drawn with matplotlib's Agg backend (no display) into RUN/plots/, from history.csv and the
predictions that training (validation) and `tfclf evaluate` store in RUN/predictions/. The
report needs no model, except to explain mistakes: then the caller passes an `explain`
function (the CLI's loads the run's classifier on first use).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tfclf import tasks
from tfclf.evaluation.explanation_page import write
from tfclf.storage.atomic import atomic_path, atomic_write_text, read_json
from tfclf.data.examples import shown
from tfclf.storage.run_folder import kept_text, keeps_texts, load, read_history, safe_name, swapping

# explain(text, label name) -> one explanation, as TextClassifier.explain gives it per text
Explain = Callable[[str, str], dict]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: list[dict], out: Path, name: str = "learning_curves.png",
                    stage: str = "") -> Path | None:
    """Loss (training and validation) and the validation metric per epoch, side by side."""
    if not history:
        return None
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    metric = next((k for k in history[0] if k.startswith("val_") and k != "val_loss"), None)
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(11 if metric else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], marker="o", label=label)
    ax.set(title=f"{stage}Loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax.legend()
    if metric:
        ax = axes[0, 1]
        train_key = metric[len("val_"):]
        if train_key in history[0]:
            ax.plot(epochs, [r[train_key] for r in history], marker="o", label="training")
        values = [r[metric] for r in history]
        ax.plot(epochs, values, marker="o", label="validation")
        best = epochs[int(np.argmax(values))]
        ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best}), kept")
        ax.set(title=f"{stage}{train_key} per epoch", xlabel="epoch", ylabel=train_key)
        ax.legend()
    for ax in axes.flat:
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    return _save(fig, out / name)


def confusion_matrix_plot(targets: np.ndarray, probs: np.ndarray, classes: list[str], title: str,
                          out: Path) -> Path:
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    truth = targets.reshape(-1).astype(int)
    predicted = probs.argmax(axis=1) if probs.shape[1] > 1 else (probs[:, 0] >= 0.5).astype(int)
    matrix = confusion_matrix(truth, predicted, labels=list(range(len(classes))))
    size = max(4.5, 0.55 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, label="texts")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted label", ylabel="true label",
           title=f"Confusion matrix ({title})")
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    return _save(fig, out / f"confusion_matrix_{safe_name(title)}.png")


def scores_plot(targets: np.ndarray, scores: np.ndarray, title: str, out: Path) -> Path:
    """Regression: each text's predicted score against its target, and the diagonal they should lie on."""
    plt = _pyplot()
    truth, found = targets.reshape(-1), scores.reshape(-1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(truth, found, s=6, alpha=0.4)
    low, high = float(min(truth.min(), found.min())), float(max(truth.max(), found.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1)
    ax.set(xlabel="target", ylabel="predicted score", title=f"Predicted against target ({title})")
    ax.grid(alpha=0.3)
    return _save(fig, out / f"scores_{safe_name(title)}.png")


def per_label_f1_plot(per_label: dict, title: str, out: Path) -> Path:
    plt = _pyplot()
    names = sorted(per_label, key=lambda n: per_label[n]["f1-score"])
    f1 = [per_label[n]["f1-score"] for n in names]
    support = [per_label[n]["support"] for n in names]
    fig, ax = plt.subplots(figsize=(8, max(4, 0.3 * len(names) + 1.5)))
    bars = ax.barh(range(len(names)), f1, color="tab:blue")
    ax.set(yticks=range(len(names)), xlim=(0, 1.15), xlabel="F1 (with the run's thresholds)",
           title=f"Per-label F1 ({title}); support in brackets")
    ax.set_yticklabels(names)
    for bar, value, count in zip(bars, f1, support):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.2f} [{count}]",
                va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out / f"per_label_f1_{safe_name(title)}.png")


def pr_curves_plot(targets: np.ndarray, probs: np.ndarray, classes: list[str], title: str, out: Path) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    cmap = plt.get_cmap("tab20")
    for j, name in enumerate(classes):
        if targets[:, j].sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(targets[:, j], probs[:, j])
        ap = average_precision_score(targets[:, j], probs[:, j])
        # tab20 has 20 colours: from the 21st label on, the line style tells two labels apart
        style = ("-", "--", ":")[(j // 20) % 3]
        ax.plot(recall, precision, color=cmap(j % 20), linestyle=style, linewidth=1, label=f"{name} (AP {ap:.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"Precision-recall per label ({title})")
    ax.legend(fontsize=7, ncol=2 if len(classes) > 14 else 1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    return _save(fig, out / f"pr_curves_{safe_name(title)}.png")


def _save(fig, path: Path) -> Path:
    """Draw to a temporary file, then rename: a plot is never half-written."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


MISTAKES_SHOWN = 3


def confident_mistakes(task: str, targets: np.ndarray, probs: np.ndarray, thresholds: np.ndarray,
                       k: int = MISTAKES_SHOWN) -> list[tuple[int, int, float]]:
    """The `k` most confident mistakes as (text, class to explain, confidence): the wrongly
    predicted class, or for multi-label a label wrongly given (or missed) and how sure of it; for
    regression the largest errors, and by how much."""
    if task == "regression":
        errors = np.abs(probs.reshape(-1) - targets.reshape(-1))
        found = [(int(i), 0, float(errors[i])) for i in np.argsort(-errors)[:k]]
    elif task == "multilabel":
        given = tasks.decide(task, probs, thresholds)
        wrong = np.argwhere(given != targets)
        found = [(int(i), int(j), float(probs[i, j] if given[i, j] else 1 - probs[i, j])) for i, j in wrong]
    else:
        predicted = tasks.decide(task, probs, thresholds)
        sure = tasks.class_probabilities(task, probs)
        found = [(int(i), int(predicted[i]), float(sure[i, predicted[i]]))
                 for i in np.flatnonzero(predicted != targets.reshape(-1))]
    return sorted(found, key=lambda m: -m[2])[:k]


class MistakeTexts:
    """The texts of the `k` most confident mistakes, kept as evaluation streams block by block:
    all a report needs of a set's texts (the rest are never held)."""

    def __init__(self, task: str, thresholds: np.ndarray, k: int = MISTAKES_SHOWN):
        self.task, self.thresholds, self.k = task, thresholds, k
        self.found: list[tuple[float, int, str]] = []  # (confidence, row, text)

    def add(self, first_row: int, targets: np.ndarray, probs: np.ndarray, texts: list[str]) -> None:
        for row, _, sure in confident_mistakes(self.task, targets, probs, self.thresholds, self.k):
            self.found.append((sure, first_row + row, texts[row]))
        # a few more than k: the report picks its k on the whole set, where ties may fall otherwise
        self.found = sorted(self.found, key=lambda m: (-m[0], m[1]))[:4 * self.k]

    @property
    def texts(self) -> dict[int, str]:
        return {row: text for _, row, text in self.found}


def kept_texts(run_dir: str | Path) -> bool:
    """Whether any recorded evaluation kept its texts (so its mistakes can be explained)."""
    for stored in (Path(run_dir) / "predictions").glob("*.npz"):
        with np.load(stored) as data:
            if keeps_texts(data):
                return True
    return False


def _mistakes_section(run_dir: Path, title: str, data, task: str, classes: list[str], thresholds: np.ndarray,
                      explain: Explain) -> list[str]:
    """The most confident mistakes of one evaluation, with their attributions (plots/mistakes_*.html)."""
    found = confident_mistakes(task, data["targets"], data["probabilities"], thresholds)
    if not found:
        return [f"No mistakes on {title}.", ""]
    found = [m for m in found if kept_text(data, m[0]) is not None]
    texts = [kept_text(data, i) for i, _, _ in found]
    explained = [explain(text, classes[c]) for text, (_, c, _) in zip(texts, found)]
    page, _ = write(run_dir / "plots" / f"mistakes_{safe_name(title)}.html", explained,
                    f"Most confident mistakes ({title}): {run_dir.name}")
    lines = [f"### Most confident mistakes ({title})", "",
             f"Attributions of the label each was wrong about: [plots/{page.name}](plots/{page.name}).", "",
             f"| text | wrong about | {'error' if task == 'regression' else 'confidence'} | words for it (integrated "
             "gradients) |", "|---|---|---|---|"]
    for text, (_, c, sure), result in zip(texts, found, explained):
        a = result["attributions"][0]
        top = sorted(zip(a.words, a.word_scores), key=lambda w: -w[1])[:5]
        short = " ".join(shown(text).split())[:90].replace("|", "\\|")  # a pair as first ‖ second
        lines.append(f"| {short} | {classes[c]} | {sure:.2f} | " + ", ".join(f"{w} ({v:+.2f})" for w, v in top) + " |")
    return lines + [""]


def write_report(run_dir: str | Path, explain: Explain | None = None) -> Path:
    """Plots for every recorded evaluation and RUN/report.md linking them; returns the report's path.
    With `explain`, each evaluation that kept its texts also gets its most confident mistakes
    explained (`tfclf report` does it; the report after training does not). Written under the
    run folder's swap lock: a run that replaces this one meanwhile waits, and never gets its plots."""
    with swapping(Path(run_dir)):
        return _write_report(run_dir, explain)


def _write_report(run_dir: str | Path, explain: Explain | None) -> Path:
    run_dir, config, labels, thresholds = load(run_dir)
    task, classes = config.task, labels["classes"]
    recorded = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    plots = run_dir / "plots"
    lines = [f"# Run report: {run_dir.name}", "",
             f"Task **{task}**, model `{config.model}`, " + ("" if task == "regression" else f"{len(classes)} labels, ") +
             f"max length "
             f"{config.max_length}, {config.epochs} epochs, batch {config.batch_size}, "
             f"lr {config.learning_rate}.", ""]
    two_stages = (run_dir / "document_history.csv").exists()  # stage 2 trained after stage 1
    curves = learning_curves(read_history(run_dir / "history.csv"), plots,
                             stage="Stage 1, chunks: " if two_stages else "")
    if curves:
        lines += ["## Learning curves", "", f"![learning curves](plots/{curves.name})", ""]
    documents = learning_curves(read_history(run_dir / "document_history.csv"), plots,
                                "learning_curves_documents.png", "Stage 2, documents: ")
    if documents:
        lines += [f"![stage 2 learning curves](plots/{documents.name})", ""]
    for name, result in recorded.items():
        lines += [f"## {name}", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in result.items() if not isinstance(v, (dict, list)) and k != "predictions"]
        lines.append("")
        stored = run_dir / "predictions" / f"{safe_name(name)}.npz"
        if not stored.exists():
            continue
        data = np.load(stored)
        targets, probs = data["targets"], data["probabilities"]
        title = "validation" if name == "valid" else Path(name).name
        if task == "multilabel":
            for path in (per_label_f1_plot(result["per_label"], title, plots),
                         pr_curves_plot(targets, probs, classes, title, plots)):
                lines += [f"![{path.stem}](plots/{path.name})", ""]
        else:
            path = scores_plot(targets, probs, title, plots) if task == "regression" else \
                confusion_matrix_plot(targets, probs, classes, title, plots)
            lines += [f"![{path.stem}](plots/{path.name})", ""]
        if explain is not None and keeps_texts(data):
            lines += _mistakes_section(run_dir, title, data, task, classes, thresholds, explain)
    report = run_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report
