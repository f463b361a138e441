"""The `tfclf` commands: train, evaluate, predict, explain, pretrain, report, export.

Input is read and checked before TensorFlow is imported, so a mistake in a file is
reported in a second, as one line on stderr with exit status 2 and no traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tfclf import tasks
from tfclf.cli.quiet import import_tensorflow_quietly
from tfclf.config import PRETRAIN, RUN, RunConfig, check_all
from tfclf.data.blocks import ExampleStream
from tfclf.data.examples import PAIR_SEP, Columns, Pair, clean_text, join_pair, load_examples, read_texts
from tfclf.data.labels import LabelSpace
from tfclf.data.predictions import merge, output_format
from tfclf.errors import TfclfError
from tfclf.evaluation.report import kept_texts, write_report
from tfclf.models.backbones import check_checkpoint, resolve_checkpoint
from tfclf.runtime import distribute
from tfclf.runtime.precision import require
from tfclf.serving.streaming import Shard, predict_file
from tfclf.storage.atomic import atomic_path, read_json
from tfclf.storage.run_folder import config_of, require_finished
from tfclf.storage.training import check_replaceable


def _data_settings(args: argparse.Namespace) -> dict:
    settings = {"text_column": args.text_column, "label_column": args.label_column, "label_sep": args.label_sep,
                "drop_empty": args.drop_empty, "encoding": args.encoding, "pair_column": args.pair_column}
    if args.label_columns:
        settings["label_columns"] = tuple(c.strip() for c in args.label_columns.split(",") if c.strip())
    return {k: v for k, v in settings.items() if v is not None}


def _run_config(run: str, args: argparse.Namespace):
    """The run's saved config, with this command's data options laid over it."""
    return dataclasses.replace(config_of(run), **_data_settings(args))


def cmd_train(args: argparse.Namespace) -> int:
    given = {s.name: getattr(args, s.name) for s in RUN if s.cli and getattr(args, s.name) is not None}
    config = RunConfig(task=args.task, **given, **_data_settings(args))
    require(config.precision)
    distribute.require(config.strategy)
    read = dict(task=config.task, drop_empty=config.drop_empty, encoding=config.encoding)
    train = load_examples(args.train, Columns.of(config), **read)
    valid = load_examples(args.valid, Columns.of(config), **read) if args.valid else None
    labels = LabelSpace.fit(train, config.task)
    if valid is not None:
        labels.encode(valid)  # an unseen label stops us now, not after an hour of training
    check_replaceable(args.out, args.overwrite)

    # a missing, offline or too short checkpoint, before TensorFlow loads
    check_checkpoint(resolve_checkpoint(config.model), config.max_length, config.model)
    import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    keep = dict(keep_head=True, pairs=config.pair_column is not None) if args.keep_head else {}
    clf = TextClassifier.from_pretrained(config.model, config.task, **keep, **_data_settings(args),
                                         **{k: v for k, v in given.items() if k != "model"})
    clf.fit(train, valid=valid, run_dir=args.out, verbose=_fit_verbosity(), overwrite=args.overwrite,
            warm_start=args.keep_head)
    if not distribute.is_chief(config.strategy):  # the chief writes the run folder and its report
        print(json.dumps({"run": args.out, "worker": distribute.task().name, "history": clf.history}, indent=2))
        return 0
    write_report(args.out)
    print(json.dumps({"run": args.out, "valid": _headline(Path(args.out))}, indent=2))
    return 0


def _fit_verbosity() -> int:
    """Keras's progress bar on a terminal; one line per epoch in a log (a pipe, CI, a cluster job),
    where the bar's redraws would fill it."""
    return 1 if sys.stdout.isatty() else 2


def _headline(run: Path) -> dict | None:
    path = run / "metrics.json"
    if not path.exists():
        return None
    found = json.loads(path.read_text(encoding="utf-8")).get("valid", {})
    return {k: v for k, v in found.items() if not isinstance(v, dict)}


def cmd_evaluate(args: argparse.Namespace) -> int:
    config = _run_config(require_finished(args.run), args)
    space = LabelSpace.from_json(read_json(Path(args.run) / "labels.json"))
    first = next(iter(ExampleStream(args.data, Columns.of(config), task=config.task, drop_empty=config.drop_empty,
                                    encoding=config.encoding)))
    space.encode(first.examples)  # a wrong column or an unseen label in the first block, before TensorFlow loads
    import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    clf = TextClassifier.load(args.run, args.precision, engine=args.engine, calibration=_calibration(args, config),
                              **_data_settings(args))
    result = clf.evaluate(args.data, run_dir=args.run, name=str(args.data), progress=sys.stderr.isatty())
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if args.data is None and (args.out or args.resume or args.shard):
        raise TfclfError("predict --out, --resume and --shard go with --data FILE (--text prints to the console)")
    if args.data and not args.out:
        raise TfclfError("predict --data needs --out FILE for the predictions")
    config = _run_config(require_finished(args.run), args) if args.run else None
    columns = Columns.of(config) if config else Columns(text=args.text_column or "text", pair=args.pair_column)
    options = dict(drop_empty=bool(args.drop_empty), encoding=args.encoding or (config.encoding if config else "utf-8"))
    if args.data:  # the first block's problems (a missing column, an empty text), before TensorFlow loads
        output_format(Path(args.out))
        shard = Shard.parse(args.shard) if args.shard else None
        next(iter(ExampleStream(args.data, columns, with_labels=False, rows=args.block_rows, **options)))
    import_tensorflow_quietly()
    if args.saved_model:  # no transformers, no run folder: only the SavedModel
        from tfclf.serving.export import load_saved_model, saved_model_predictor

        loaded = load_saved_model(args.saved_model)
        task, classes = loaded.task_name.numpy().decode(), [c.decode() for c in loaded.class_names.numpy()]
        predict, model = saved_model_predictor(loaded), str(Path(args.saved_model).resolve())
    else:
        from tfclf.classifier import TextClassifier

        run = TextClassifier.load(args.run, args.precision, engine=args.engine,
                                  calibration=_calibration(args, config)).run_
        task, classes, model = run.config.task, run.labels.classes, run.run_id

        def predict(texts: list[str]):
            units = run.probabilities(texts)
            return tasks.class_probabilities(task, units), run.labels.names(run.decide(units))

    if not args.data:
        texts = _argv_texts(args)  # argv's undecodable bytes too
        probs, labels = predict(texts)
        for text, p, label in zip(texts, probs, labels):
            text, _, pair = text.partition(PAIR_SEP)
            scores = {} if task == "regression" else {"probabilities": dict(zip(classes, map(float, p)))}
            print(json.dumps({"text": text, **({"pair": pair} if pair else {}), tasks.prediction_key(task): label,
                              **scores}, ensure_ascii=False))
        return 0
    rows = predict_file(predict, classes, tasks.prediction_key(task), Path(args.data), Path(args.out), model=model,
                        columns=columns, label_sep=config.label_sep if config else ",", shard=shard,
                        resume=args.resume, block_rows=args.block_rows, progress=sys.stderr.isatty(), **options)
    print(f"wrote {rows} predictions to {args.out}", file=sys.stderr)
    return 0


def _calibration(args: argparse.Namespace, config) -> list[str] | None:
    """--calibration's first 300 texts (pairs joined), for --precision int8; None without it."""
    if args.calibration is None:
        return None
    found = load_examples(args.calibration, Columns.of(config), with_labels=False, drop_empty=True,
                          encoding=config.encoding)
    return found.texts[:300]


def _argv_texts(args: argparse.Namespace) -> list[str]:
    """--text (and --pair: a sentence pair each) as the model reads them."""
    if not args.pair:
        return [clean_text(t) for t in args.text]
    if len(args.pair) != len(args.text):
        raise TfclfError(f"{len(args.text)} --text but {len(args.pair)} --pair: one --pair per --text")
    return [join_pair(t, p) for t, p in zip(args.text, args.pair)]


def cmd_merge_predictions(args: argparse.Namespace) -> int:
    out = Path(args.out)
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as file:
        rows = merge([Path(p) for p in args.parts], file, out)
    print(f"merged {rows} predictions from {len(args.parts)} shards into {out}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    config = _run_config(require_finished(args.run), args)
    classes = LabelSpace.from_json(read_json(Path(args.run) / "labels.json")).classes
    unknown = [name for name in args.label or [] if name not in classes]
    if unknown:  # before TensorFlow loads
        raise TfclfError(f"--label {unknown[0]}: not a label of this run ({', '.join(classes)})")
    if args.data:
        texts = load_examples(args.data, Columns.of(config), with_labels=False, drop_empty=bool(args.drop_empty),
                              encoding=args.encoding or "utf-8").texts
    else:
        texts = _argv_texts(args)
    for i, text in enumerate(texts):
        if not text.strip():
            where = f"{args.data}: text {i + 1}" if args.data else f"--text {i + 1}"
            raise TfclfError(f"{where} is empty: there is nothing to explain (--drop-empty skips empty rows)")
    import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier
    from tfclf.evaluation.explanation_page import write

    clf = TextClassifier.load(args.run, args.precision)
    found = clf.explain(texts, labels=args.label, steps=args.steps, progress=sys.stderr.isatty() and len(texts) > 1)
    page, data = write(Path(args.out), found, f"Why: {Path(args.run).name}")
    print(json.dumps({"html": str(page), "json": str(data), "texts": len(found)}))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    check_all({s.name: getattr(args, s.name) for s in PRETRAIN}, PRETRAIN)
    require(args.precision)
    texts = read_texts(args.text, args.text_column, args.encoding)
    check_checkpoint(resolve_checkpoint(args.model), args.max_length, args.model)
    import_tensorflow_quietly()
    from tfclf.training.pretraining import pretrain

    out = pretrain(texts, args.model, args.out, max_length=args.max_length, epochs=args.epochs,
                   batch_size=args.batch_size, learning_rate=args.learning_rate, probability=args.mlm_probability,
                   whole_word=args.whole_word, seed=args.seed, precision=args.precision, verbose=_fit_verbosity())
    print(f"pre-trained {args.model} on {len(texts)} texts; checkpoint in {out} (tfclf train --model {out})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from tfclf.models import fetched

    print(fetched.fetch(args.alias, args.find_links, progress=lambda line: print(line, file=sys.stderr)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    run = require_finished(args.run)
    path = write_report(run, _explainer(run) if kept_texts(run) else None)
    print(f"wrote {path} and its plots in {path.parent / 'plots'}")
    return 0


def _explainer(run: Path):
    """explain(text, label) for the report's mistakes: the run's classifier, loaded on first use."""
    import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    loaded = []

    def explain(text: str, label: str) -> dict:
        if not loaded:
            loaded.append(TextClassifier.load(run))
        return loaded[0].explain([Pair(text) if PAIR_SEP in text else text], labels=[label])[0]  # kept as joined

    return explain


def cmd_export(args: argparse.Namespace) -> int:
    config = config_of(require_finished(args.run))  # a wrong folder is said before TensorFlow loads
    if args.version is not None and args.version < 1:
        raise TfclfError(f"--version must be a positive integer (TF Serving's versions are), got {args.version}")
    if args.format == "huggingface" and (config.long_doc != "truncate" or config.pooling != "cls"):
        raise TfclfError(f"{args.run}: export --format huggingface takes one-stage runs on [CLS] (--pooling cls, "
                         f"no --long-doc hierarchical), this one is {config.long_doc} with --pooling {config.pooling}")
    if args.format == "huggingface" and args.precision != "float32":
        raise TfclfError("--precision bfloat16 is for SavedModels: a Hugging Face folder holds float32 weights, "
                         "and transformers picks its own precision when it runs them")
    import_tensorflow_quietly()
    from tfclf.classifier import TextClassifier

    path = TextClassifier.load(args.run).export(args.out, args.version, args.precision, args.format)
    print(f"exported {args.run} to {path}")
    return 0


COMMANDS = {"merge-predictions": cmd_merge_predictions, "fetch": cmd_fetch, "train": cmd_train, "pretrain": cmd_pretrain, "evaluate": cmd_evaluate, "predict": cmd_predict, "report": cmd_report, "explain": cmd_explain,
            "export": cmd_export}
