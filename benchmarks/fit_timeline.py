"""Where one `TextClassifier.fit` epoch's time goes: set-up, the first step of each batch width, the rest.

    python benchmarks/fit_timeline.py       # prints a summary, writes benchmarks/results/fit-timeline.json

The throughput benchmark's tfclf row (4,096 GoEmotions comments, batch 32, float32, one
epoch), timed per batch with a Keras callback. The batch widths come from iterating the same
seeded dataset beforehand (the first iteration of a fresh dataset is the epoch fit sees).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_line, save_json  # noqa: E402
from throughput import SETTINGS, goemotions_sample  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    import tf_keras as keras

    from tfclf import TextClassifier
    from tfclf.text.sequences import token_ids
    from tfclf.training import callbacks as training_callbacks, pipeline
    from tfclf.runtime.cpu import describe

    s = SETTINGS
    texts, targets, names = goemotions_sample(s["samples"], s["seed"])
    labels = [[names[j] for j in np.flatnonzero(row)] for row in targets]
    start = time.perf_counter()
    clf = TextClassifier.from_pretrained("minilm-l6", task="multilabel", epochs=1, batch_size=s["batch_size"],
                                         max_length=s["max_length"], learning_rate=s["learning_rate"],
                                         weight_decay=s["weight_decay"], warmup_fraction=s["warmup_fraction"],
                                         clipnorm=s["clipnorm"], seed=s["seed"], precision="float32")
    ids = token_ids(clf.tokenizer, texts)
    widths = [int(f["input_ids"].shape[1]) for f, _ in
              pipeline.training_dataset(ids, targets, s["batch_size"], clf.tokenizer.pad_id, s["seed"])]
    marks: list[float] = []

    class Timeline(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.perf_counter())

    callbacks = training_callbacks.callbacks
    training_callbacks.callbacks = lambda *a, **k: callbacks(*a, **k) + [Timeline()]
    fit_start = time.perf_counter()
    clf.fit(texts, labels, verbose=0)
    fit_end = time.perf_counter()
    steps = np.diff(marks)
    seen, first, later = set(), {}, []
    for width, seconds in zip(widths, steps):
        if width in seen:
            later.append(seconds)
        else:
            first[width] = round(float(seconds), 2)
            seen.add(width)
    result = {"cpu": describe(), "settings": s, "before_fit_s": round(fit_start - start, 1),
              "fit_s": round(fit_end - fit_start, 1), "fit_to_first_batch_s": round(marks[0] - fit_start, 1),
              "first_step_of_each_width_s": first, "later_steps": len(later),
              "later_step_mean_s": round(float(np.mean(later)), 3), "mean_width": round(float(np.mean(widths)), 1)}
    save_json(RESULTS / "fit-timeline.json", result)
    print(cpu_line(result["cpu"]))
    for key, value in result.items():
        if key not in ("cpu", "settings"):
            print(f"{key:<28} {value}")


if __name__ == "__main__":
    main()
