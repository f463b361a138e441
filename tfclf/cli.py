"""The `tfclf` command line: train, evaluate, predict.

Input is read and checked before TensorFlow is imported, so a mistake in a file is
reported in a second, as one line on stderr with exit status 2 and no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from tfclf.errors import TfclfError
from tfclf.precision import GRAPH_ONLY, POLICIES, require, resolve


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="column holding the text (default: text)")
    parser.add_argument("--label-column", help="column holding the label(s) (default: labels)")
    parser.add_argument("--label-sep", help="separator of several labels in one cell (multilabel; default ,)")
    parser.add_argument("--label-columns", help="comma-separated 0/1 columns, one per label (one-hot layout)")
    parser.add_argument("--drop-empty", action="store_true", default=None,
                        help="skip rows with empty text (with a warning) instead of stopping")
    parser.add_argument("--encoding", help="encoding of the data files (default utf-8)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfclf", description="Fine-tune BERT-family models for text "
                                     "classification in TensorFlow, evaluate them and predict.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="fine-tune a checkpoint on labelled text")
    train.add_argument("--train", required=True, help="training data: .csv, .tsv or .jsonl with a header")
    train.add_argument("--valid", help="validation data: early stopping, best epoch, thresholds")
    train.add_argument("--valid-fraction", type=float, default=0.0,
                       help="without --valid, hold out this seeded fraction of --train")
    train.add_argument("--task", choices=["binary", "multiclass", "multilabel"], required=True)
    train.add_argument("--model", default="minilm-l6", help="minilm-l6, a local Hugging Face folder or a Hub name")
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--max-length", type=int, default=128, help="tokens per text, [CLS] and [SEP] included")
    train.add_argument("--truncation", choices=["head", "tail", "head+tail"], default="head")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of AdamW")
    train.add_argument("--warmup", type=float, default=0.1, help="fraction of steps spent warming up")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--dropout", type=float, default=0.1)
    train.add_argument("--pooling", choices=["cls", "mean", "max", "last4-concat", "last4-mean"], default="cls",
                       help="[CLS], masked mean or max of the last layer, or the last four layers' [CLS] "
                            "concatenated or averaged")
    train.add_argument("--layer-decay", type=float, default=1.0,
                       help="layer-wise learning-rate decay ξ: layer l of L gets lr·ξ^(L-l), the embeddings "
                            "lr·ξ^L (Sun et al. use 0.95; 1 is off)")
    train.add_argument("--head-lr", type=float, help="learning rate of the classification head (default --lr)")
    train.add_argument("--class-weight", choices=["balanced"],
                       help="weight classes (multi-class, binary) or positive examples per label (multi-label) "
                            "against imbalance")
    train.add_argument("--long-doc", choices=["truncate", "hierarchical"], default="truncate",
                       help="hierarchical: fine-tune on chunks of --max-length tokens, then classify each "
                            "document from its chunks' embeddings (two stages)")
    train.add_argument("--chunk-stride", type=int, default=0, help="tokens shared by consecutive chunks")
    train.add_argument("--max-chunks", type=int, default=16,
                       help="chunks per document at most; longer documents are first cut by --truncation")
    train.add_argument("--doc-pooling", choices=["lstm", "mean", "max", "attention"], default="lstm",
                       help="stage 2: how a document's chunk embeddings are combined")
    train.add_argument("--doc-epochs", type=int, default=20, help="stage 2 epochs at most (early stopping)")
    train.add_argument("--doc-lr", type=float, default=1e-3, help="stage 2 learning rate (Adam)")
    train.add_argument("--patience", type=int, default=2, help="epochs without improvement before stopping")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--strategy", choices=["default", "mirrored", "multiworker", "tpu"], default="default",
                       help="tf.distribute: several GPUs (mirrored), hosts in TF_CONFIG (multiworker) or a TPU; "
                            "--batch-size is the global batch")
    train.add_argument("--precision", default="auto", choices=list(POLICIES),
                       help="auto (the default): train with bfloat16 matrix multiplies on CPUs with AVX512-BF16 or "
                            "AMX, float32 elsewhere, and predict in float32; matmul_bfloat16 also predicts with "
                            "them (refused on CPUs without bf16 instructions); mixed_float16 on GPUs")
    train.add_argument("--xla", action="store_true", help="compile training and prediction steps with XLA")
    _add_data_options(train)

    evaluate = commands.add_parser("evaluate", help="metrics of a trained run on labelled data")
    evaluate.add_argument("--run", required=True, help="run folder written by tfclf train")
    evaluate.add_argument("--data", required=True, help="labelled data to evaluate on")
    _add_data_options(evaluate)

    predict = commands.add_parser("predict", help="labels and probabilities for new text")
    model = predict.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", help="run folder written by tfclf train")
    model.add_argument("--saved-model", help="exported SavedModel version folder (saved_models/NAME/N)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="file of texts (.csv, .tsv or .jsonl)")
    source.add_argument("--text", action="append", help="a text to classify (repeatable)")
    predict.add_argument("--out", help="with --data: where to write predictions (.csv, .tsv or .jsonl)")
    _add_data_options(predict)

    pretrain = commands.add_parser("pretrain", help="further pre-train the masked language model on your own text")
    pretrain.add_argument("--text", required=True, help="unlabelled text: .txt (one text per line), or .csv, "
                          ".tsv, .jsonl with --text-column")
    pretrain.add_argument("--model", default="minilm-l6", help="checkpoint to start from")
    pretrain.add_argument("--out", required=True, help="folder for the new checkpoint (for tfclf train --model)")
    pretrain.add_argument("--text-column", default="text")
    pretrain.add_argument("--encoding", default="utf-8")
    pretrain.add_argument("--max-length", type=int, default=128)
    pretrain.add_argument("--epochs", type=int, default=1)
    pretrain.add_argument("--batch-size", type=int, default=32)
    pretrain.add_argument("--lr", type=float, default=5e-5)
    pretrain.add_argument("--mlm-probability", type=float, default=0.15, help="share of tokens to predict")
    pretrain.add_argument("--whole-word", action="store_true", help="mask all pieces of a word together")
    pretrain.add_argument("--seed", type=int, default=42)
    pretrain.add_argument("--precision", default="auto", choices=list(GRAPH_ONLY),
                          help="auto: bf16 matmuls on CPUs with bf16 instructions, else float32")

    report = commands.add_parser("report", help="plots and a Markdown report of a run (RUN/report.md)")
    report.add_argument("--run", required=True, help="run folder written by tfclf train")

    export = commands.add_parser("export", help="SavedModel for TensorFlow Serving, taking raw text")
    export.add_argument("--run", required=True, help="run folder written by tfclf train")
    export.add_argument("--out", required=True, help="model folder, e.g. saved_models/NAME; "
                        "the version goes below it")
    export.add_argument("--version", type=int, help="version number (default: the next integer)")
    return parser


def _data_settings(args: argparse.Namespace) -> dict:
    settings = {"text_column": args.text_column, "label_column": args.label_column, "label_sep": args.label_sep,
                "drop_empty": args.drop_empty, "encoding": args.encoding}
    if args.label_columns:
        settings["label_columns"] = tuple(c.strip() for c in args.label_columns.split(",") if c.strip())
    return {k: v for k, v in settings.items() if v is not None}


def _run_config(run: str, args: argparse.Namespace):
    """The run's saved config, with this command's data options laid over it."""
    import dataclasses

    from tfclf.config import RunConfig

    return dataclasses.replace(RunConfig.from_run(run), **_data_settings(args))


def cmd_train(args: argparse.Namespace) -> int:
    from tfclf.config import RunConfig
    from tfclf.data import LabelSpace, load_examples

    config = RunConfig(model=args.model, task=args.task, max_length=args.max_length, truncation=args.truncation,
                       epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       warmup_fraction=args.warmup, weight_decay=args.weight_decay, dropout=args.dropout,
                       pooling=args.pooling, patience=args.patience, seed=args.seed, strategy=args.strategy,
                       valid_fraction=args.valid_fraction, layer_decay=args.layer_decay,
                       head_learning_rate=args.head_lr, class_weight=args.class_weight, long_doc=args.long_doc, chunk_stride=args.chunk_stride,
                       max_chunks=args.max_chunks, doc_pooling=args.doc_pooling, doc_epochs=args.doc_epochs,
                       doc_learning_rate=args.doc_lr, precision=args.precision, xla=args.xla,
                       **_data_settings(args))
    require(config.precision)
    read = dict(task=config.task, drop_empty=config.drop_empty, encoding=config.encoding)
    train = load_examples(args.train, config.columns, **read)
    valid = load_examples(args.valid, config.columns, **read) if args.valid else None
    labels = LabelSpace.fit(train, config.task)
    if valid is not None:
        labels.encode(valid)  # an unseen label stops us now, not after an hour of training

    from tfclf.backbones import resolve_checkpoint

    resolve_checkpoint(config.model)  # a missing or offline checkpoint, before TensorFlow loads
    _import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    _say_if_auto_is_bf16(config.precision)
    clf = TextClassifier.from_pretrained(config.model, **{k: v for k, v in vars(config).items() if k != "model"})
    clf.fit(train, valid=valid, run_dir=args.out)
    from tfclf.report import write_report

    write_report(args.out)
    print(json.dumps({"run": args.out, "valid": _headline(Path(args.out))}, indent=2))
    return 0


def _headline(run: Path) -> dict | None:
    path = run / "metrics.json"
    if not path.exists():
        return None
    found = json.loads(path.read_text(encoding="utf-8")).get("valid", {})
    return {k: v for k, v in found.items() if not isinstance(v, dict)}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tfclf.data import LabelSpace, load_examples
    from tfclf.io import read_json

    config = _run_config(args.run, args)
    examples = load_examples(args.data, config.columns, task=config.task, drop_empty=config.drop_empty,
                             encoding=config.encoding)
    LabelSpace.from_json(read_json(Path(args.run) / "labels.json")).encode(examples)
    _import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    clf = TextClassifier.load(args.run)
    clf.config = config
    result = clf.evaluate(examples, run_dir=args.run, name=str(args.data), progress=sys.stderr.isatty())
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _show_progress(texts: list[str]) -> bool:
    return sys.stderr.isatty() and len(texts) > 1000  # a bar for long files, on a terminal only


def cmd_predict(args: argparse.Namespace) -> int:
    from tfclf.data import Columns, load_examples

    if args.data and not args.out:
        raise TfclfError("predict --data needs --out FILE for the predictions")
    config = _run_config(args.run, args) if args.run else None
    columns = config.columns if config else Columns(text=args.text_column or "text")
    examples = load_examples(args.data, columns, with_labels=False, drop_empty=bool(args.drop_empty),
                             encoding=args.encoding or "utf-8") if args.data else None
    texts = examples.texts if examples else args.text
    _import_tensorflow_quietly()
    if args.saved_model:  # no transformers, no run folder: only the SavedModel
        from tfclf.export import load_saved_model, predict_saved_model

        loaded = load_saved_model(args.saved_model)
        task = loaded.task_name.numpy().decode()
        classes = [c.decode() for c in loaded.class_names.numpy()]
        out = predict_saved_model(loaded, texts, progress=_show_progress(texts))
        probs = out["probabilities"]
        labels = [[n.decode() for n in row if n] for row in out["labels"]] if task == "multilabel" \
            else [n.decode() for n in out["label"]]
    else:
        from tfclf.classifier import TextClassifier

        clf = TextClassifier.load(args.run)
        task, classes = clf.config.task, clf.labels.classes
        probs = clf.predict_proba(texts, progress=_show_progress(texts))
        labels = clf.decide(probs)
        if task == "binary":
            probs = np.concatenate([1 - probs, probs], axis=1)
    rows = prediction_rows(texts, probs, labels, classes, task)
    if args.out:
        write_predictions(Path(args.out), rows, config.label_sep if config else ",")
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    return 0


def prediction_rows(texts: Sequence[str], probs, labels: Sequence, classes: Sequence[str], task: str) -> list[dict]:
    """One dict per text: the decided label(s) and every class's probability."""
    key = "labels" if task == "multilabel" else "label"
    return [{"text": text, key: label, "probabilities": dict(zip(classes, map(float, p)))}
            for text, p, label in zip(texts, probs, labels)]


def _say_if_auto_is_bf16(name: str) -> None:
    if name == "auto" and resolve("auto") == "matmul_bfloat16":
        print("tfclf: this CPU has bfloat16 matmuls: training runs them in bf16, predictions in float32 "
              "(--precision float32 turns this off)", file=sys.stderr)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from tfclf.backbones import resolve_checkpoint
    from tfclf.data import read_texts

    if not 0 < args.mlm_probability < 1:
        raise TfclfError(f"--mlm-probability must be between 0 and 1, got {args.mlm_probability}")
    require(args.precision)
    texts = read_texts(args.text, args.text_column, args.encoding)
    resolve_checkpoint(args.model)
    _import_tensorflow_quietly()
    from tfclf.pretraining import pretrain

    _say_if_auto_is_bf16(args.precision)
    out = pretrain(texts, args.model, args.out, max_length=args.max_length, epochs=args.epochs,
                   batch_size=args.batch_size, learning_rate=args.lr, probability=args.mlm_probability,
                   whole_word=args.whole_word, seed=args.seed, precision=args.precision)
    print(f"pre-trained {args.model} on {len(texts)} texts; checkpoint in {out} (tfclf train --model {out})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tfclf.report import write_report

    path = write_report(args.run)
    print(f"wrote {path} and its plots in {path.parent / 'plots'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfclf.config import RunConfig

    RunConfig.from_run(args.run)  # a wrong folder is said before TensorFlow loads
    _import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier
    from tfclf.export import export

    path = export(TextClassifier.load(args.run), args.out, args.version)
    print(f"exported {args.run} to {path}")
    return 0


def write_predictions(path: Path, rows: list[dict], label_sep: str) -> None:
    import pandas as pd

    from tfclf.io import atomic_write_text

    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    if suffix not in (".csv", ".tsv", ".tab", ".txt"):
        raise TfclfError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl")
    flat = []
    for r in rows:
        label = r.get("label", None)
        flat.append({"text": r["text"],
                     "prediction": label if label is not None else label_sep.join(r["labels"]),
                     **{f"p_{k}": v for k, v in r["probabilities"].items()}})
    atomic_write_text(path, pd.DataFrame(flat).to_csv(index=False, sep="," if suffix == ".csv" else "\t"))


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr silenced: its C++ start-up lines (oneDNN, CUDA probing) are
    written before any log level applies. An import error still raises, after stderr is back."""
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers its ops)

        tf.config.list_physical_devices()  # the CUDA probe, while quiet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


COMMANDS = {"train": cmd_train, "pretrain": cmd_pretrain, "evaluate": cmd_evaluate, "predict": cmd_predict, "report": cmd_report,
            "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TfclfError as err:
        print(f"tfclf: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
