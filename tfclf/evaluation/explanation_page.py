"""Attributions as a self-contained HTML page (words shaded by score, one block per label) and JSON."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from tfclf.storage.atomic import atomic_write_text

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 60em;
       color: #1f2328; line-height: 1.5; }
h1 { font-size: 1.4em; } .legend span { padding: 0.1em 0.4em; border-radius: 0.2em; }
.text { border: 1px solid #d0d7de; border-radius: 0.4em; padding: 0.8em 1em; margin: 1em 0; }
.meta { color: #57606a; font-size: 0.9em; } .label { margin-top: 0.6em; }
.label h3 { font-size: 1em; margin: 0.2em 0; } .label h3 b { font-size: 1.1em; }
.words span { padding: 0.05em 0.15em; margin: 0 0.05em; border-radius: 0.2em; font-size: 1.05em; }
.chunks span { display: inline-block; min-width: 3em; text-align: center; margin: 0.1em; padding: 0.1em 0.3em;
               border: 1px solid #d0d7de; border-radius: 0.2em; font-size: 0.85em; }
"""


def _shade(score: float, scale: float) -> str:
    """Red for words that raise the label's score, blue for words that lower it."""
    alpha = min(abs(score) / scale, 1.0) * 0.85 if scale > 0 else 0.0
    rgb = "220, 38, 38" if score >= 0 else "37, 99, 235"
    ink = "; color: #fff" if alpha > 0.55 else ""  # dark shades get white letters, to stay legible
    return f"background: rgba({rgb}, {alpha:.3f}){ink}"


def _spans(items: list[str], scores: list[float]) -> str:
    scale = float(np.max(np.abs(scores))) if scores else 0.0
    return " ".join(f'<span style="{_shade(s, scale)}" title="{s:+.4f}">{html.escape(w)}</span>'
                    for w, s in zip(items, scores))


def _label_block(attribution) -> str:
    a = attribution
    head = (f"<h3>label <b>{html.escape(a.label)}</b> &nbsp;<span class='meta'>score {a.logit:+.3f}, baseline "
            f"{a.baseline_logit:+.3f}, completeness gap {100 * a.completeness_gap:.1f} %</span></h3>")
    chunks = ""
    if a.chunk_scores is not None:
        chunks = (f"<div class='chunks meta'>chunks: "
                  f"{_spans([str(i + 1) for i in range(len(a.chunk_scores))], a.chunk_scores)}"
                  f" &nbsp;words of chunk {a.chunk + 1}:</div>")
    return f"<div class='label'>{head}{chunks}<div class='words'>{_spans(a.words, a.word_scores)}</div></div>"


def render(explanations: list[dict], title: str) -> str:
    blocks = []
    for i, found in enumerate(explanations, 1):
        predicted = found["predicted"]
        shown = ", ".join(predicted) if isinstance(predicted, list) else \
            f"{predicted:.4g}" if isinstance(predicted, float) else predicted  # a regression's score
        blocks.append(f"<div class='text'><div class='meta'>text {i} &middot; predicted: "
                      f"<b>{html.escape(shown or '(none)')}</b></div>"
                      + "".join(_label_block(a) for a in found["attributions"]) + "</div>")
    legend = ("<p class='legend meta'>Integrated gradients over the input embeddings, from a baseline of [PAD] "
              "tokens. <span style='background: rgba(220, 38, 38, 0.6)'>red</span> raises the label's score, "
              "<span style='background: rgba(37, 99, 235, 0.6)'>blue</span> lowers it; the shade is relative "
              "to the strongest word of each label. Hover a word for its score.</p>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{legend}{''.join(blocks)}</body></html>")


def to_json(explanations: list[dict]) -> list[dict]:
    return [{**found, "attributions": [a.to_json() for a in found["attributions"]]} for found in explanations]


def write(out: Path, explanations: list[dict], title: str) -> tuple[Path, Path]:
    """OUT.html and OUT.json beside it."""
    out = Path(out)
    atomic_write_text(out, render(explanations, title))
    data = out.with_suffix(".json")
    atomic_write_text(data, json.dumps(to_json(explanations), indent=2, ensure_ascii=False))
    return out, data
