"""Probe: tfclf's training step on short texts with one knob changed at a time.

    python benchmarks/pipeline_knobs.py                    # every variant, each in its own process
    python benchmarks/pipeline_knobs.py --one round1 2048  # one variant

One epoch of MiniLM on N GoEmotions comments (seeded sample), batch 32, 28 sigmoid outputs,
tfclf's length-grouped pipeline and AdamW. Variants: base (lengths rounded up to a multiple
of 8, float32), round1 / round16 (other rounding), inter1 (one inter-op thread), nodnn
(oneDNN off), xla (jit_compile), bf16 (mixed_bfloat16), amp (Grappler's oneDNN bfloat16
pass), amp-mm (--precision matmul_bfloat16: only the matmuls in bf16, cast in the graph).
Prints one JSON line per variant: fit seconds, first step (tracing), samples/s after the
first 10 batches and the epoch's loss; writes
benchmarks/results/pipeline-knobs.json.
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import goemotions_sample  # noqa: E402
from common import json_from_fresh_process  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("base", "round1", "round16", "inter1", "nodnn", "xla", "bf16", "amp", "amp-mm")


def probe(variant: str, n: int) -> dict:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    import tf_keras as keras

    if variant == "inter1":
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if variant == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if variant == "amp":  # Grappler's oneDNN pass as it ships: matmuls and the ops after them in bf16
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    from tfclf.models import backbones
    from tfclf.models.heads import build_classifier
    from tfclf.text.sequences import token_ids
    from tfclf.training import optimization, pipeline
    from tfclf.tasks import loss as loss_for
    from tfclf.text.wordpiece import TokenizerSpec, WordPieceTokenizer

    pipeline.ROUND_TO = {"round1": 1, "round16": 16}.get(variant, pipeline.ROUND_TO)
    texts, y, _ = goemotions_sample(n, seed=0)  # the throughput benchmark's sample
    path = backbones.resolve_checkpoint("minilm-l6")
    tok = WordPieceTokenizer(TokenizerSpec.from_directory(path), 128)
    ids = token_ids(tok, texts)
    # amp-mm: --precision matmul_bfloat16, the matmuls cast to bf16 in the graph, element-wise ops float32
    model = build_classifier(backbones.build_backbone(backbones.backbone_config(path), path,
                                                      "matmul_bfloat16" if variant == "amp-mm" else "float32"), 28)
    model.compile(optimization.make_optimizer(1e-4, pipeline.count_batches(n, 32)), loss_for("multilabel"),
                  jit_compile=variant == "xla")
    clock = {}

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 10:
                clock["tenth"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                clock["first"] = time.perf_counter() - clock["start"]

    clock["start"] = time.perf_counter()
    history = model.fit(pipeline.training_dataset(ids, y, 32, tok.pad_id, 42), epochs=1, verbose=0,
                        callbacks=[Clock()])
    end = time.perf_counter()
    return {"variant": variant, "n": n, "first_step_s": round(clock["first"], 1),
            "fit_s": round(end - clock["start"], 1), "samples_per_s": round(n / (end - clock["start"]), 1),
            "steady_samples_per_s": round((n - 320) / (end - clock["tenth"]), 1),
            "loss": round(history.history["loss"][-1], 4)}  # a sanity check that the variant still learns


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(probe(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 2048)))
        return
    rows = []
    for variant in VARIANTS:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if variant == "nodnn":
            env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        rows.append(json_from_fresh_process(Path(__file__), "--one", variant, "2048", env=env, quiet=True))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline-knobs.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
