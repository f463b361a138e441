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
from tfclf.precision import require, resolve
from tfclf.run_folder import require_finished
from tfclf.settings import PRETRAIN, RUN, TASKS, Setting, check_all


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="column holding the text (default: text)")
    parser.add_argument("--label-column", help="column holding the label(s) (default: labels)")
    parser.add_argument("--label-sep", help="separator of several labels in one cell (multilabel; default ,)")
    parser.add_argument("--label-columns", help="comma-separated 0/1 columns, one per label (one-hot layout)")
    parser.add_argument("--drop-empty", action="store_true", default=None,
                        help="skip rows with empty text (with a warning) instead of stopping")
    parser.add_argument("--encoding", help="encoding of the data files (default utf-8)")


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes said as every other tfclf mistake: one line, exit 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"tfclf: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _add_settings(parser: argparse.ArgumentParser, table: tuple[Setting, ...]) -> None:
    """Options from the settings table (tfclf/settings.py): flag, type, choices, default and help."""
    for s in table:
        if not s.cli:
            continue
        if s.type is bool:
            parser.add_argument(s.option, dest=s.name, action="store_true", default=s.default, help=s.help_text())
        elif s.choices:
            parser.add_argument(s.option, dest=s.name, choices=[c for c in s.choices if c is not None],
                                default=s.default, help=s.help_text())
        else:
            parser.add_argument(s.option, dest=s.name, type=s.type, default=s.default, help=s.help_text(),
                                metavar=s.option[2:].upper().replace("-", "_"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfclf", description="Fine-tune BERT-family models for text "
                     "classification in TensorFlow, evaluate them and predict.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="fine-tune a checkpoint on labelled text")
    train.add_argument("--train", required=True, help="training data: .csv, .tsv or .jsonl with a header")
    train.add_argument("--valid", help="validation data: early stopping, best epoch, thresholds")
    train.add_argument("--task", choices=TASKS, required=True)
    train.add_argument("--out", required=True, help="run folder to write")
    _add_settings(train, RUN)
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
    pretrain.add_argument("--whole-word", action="store_true", help="mask all pieces of a word together")
    _add_settings(pretrain, PRETRAIN)

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

    config = RunConfig(task=args.task, **{s.name: getattr(args, s.name) for s in RUN if s.cli},
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

    config = _run_config(require_finished(args.run), args)
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
    config = _run_config(require_finished(args.run), args) if args.run else None
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

    check_all({s.name: getattr(args, s.name) for s in PRETRAIN}, PRETRAIN)
    require(args.precision)
    texts = read_texts(args.text, args.text_column, args.encoding)
    resolve_checkpoint(args.model)
    _import_tensorflow_quietly()
    from tfclf.pretraining import pretrain

    _say_if_auto_is_bf16(args.precision)
    out = pretrain(texts, args.model, args.out, max_length=args.max_length, epochs=args.epochs,
                   batch_size=args.batch_size, learning_rate=args.learning_rate, probability=args.mlm_probability,
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

    RunConfig.from_run(require_finished(args.run))  # a wrong folder is said before TensorFlow loads
    if args.version is not None and args.version < 1:
        raise TfclfError(f"--version must be a positive integer (TF Serving's versions are), got {args.version}")
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
