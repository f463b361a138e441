"""Every setting of a run, once (its type, range, default and help), and RunConfig, made from them.

RunConfig checks each value against this table, and the `tfclf train` and `tfclf pretrain`
options are made from it too (tfclf/cli/parser.py), so a default, a range or a help text is
written here and nowhere else. TensorFlow is not imported: the CLI checks its options before
it loads. The run folder reads and writes config.json (tfclf/storage/run_folder.py).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from tfclf.errors import TfclfError, option
from tfclf.runtime.precision import GRAPH_ONLY, POLICIES
from tfclf.tasks import TASKS  # what each means: tasks.py

TRUNCATIONS = ("head", "tail", "head+tail")
PAIR_TRUNCATIONS = ("longest_first", "only_first", "only_second")
POOLINGS = ("cls", "mean", "max", "last4-concat", "last4-mean")
LONG_DOC = ("truncate", "hierarchical")
DOC_POOLINGS = ("lstm", "mean", "max", "attention")
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
PRECISIONS = tuple(POLICIES)  # what each one means: tfclf/runtime/precision.py
MAX_SEED = 2**32 - 1  # what numpy and TensorFlow accept as a seed


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: a RunConfig field and (unless cli is False) a command-line option."""
    name: str
    type: type
    default: Any
    help: str = ""
    flag: str | None = None  # the option's name when it is not --name-with-dashes
    choices: tuple | None = None
    low: float | None = None  # the range, when a number
    high: float | None = None
    open_low: bool = False  # low itself excluded
    open_high: bool = False
    optional: bool = False  # None allowed ("not set")
    cli: bool = True

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def said(self) -> str:
        """This setting in an error message: its name in Python, its flag on the command line."""
        return option(self.name, self.option)

    def check(self, value: Any) -> None:
        """A one-line TfclfError naming the setting, the allowed values and what was given."""
        if value is None and self.optional:
            return
        if self.choices is not None:
            if value not in self.choices:
                raise TfclfError(f"{self.said} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return
        if self.type is bool:
            if not isinstance(value, bool):
                raise TfclfError(f"{self.said} must be true or false, got {value!r}")
            return
        if self.type in (int, float):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or (self.type is int and not float(value).is_integer()) or not math.isfinite(value):
                kind = "a whole number" if self.type is int else "a number"
                raise TfclfError(f"{self.said} must be {kind}, got {value!r}")
            if not self.in_range(value):
                raise TfclfError(f"{self.said} must be {self.range_text()}, got {value!r}")

    def in_range(self, value: float) -> bool:
        if self.low is not None and (value < self.low or self.open_low and value == self.low):
            return False
        return not (self.high is not None and (value > self.high or self.open_high and value == self.high))

    def range_text(self) -> str:
        def edge(v):
            return f"{v:g}" if isinstance(v, float) else str(v)

        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"in {left}{edge(self.low)}, {edge(self.high)}{right}"
        if self.low is not None:
            return f"{'greater than' if self.open_low else 'at least'} {edge(self.low)}"
        return f"{'less than' if self.open_high else 'at most'} {edge(self.high)}"

    def help_text(self) -> str:
        parts = [self.help] if self.help else []
        if self.type in (int, float) and (self.low is not None or self.high is not None):
            parts.append(self.range_text())
        if self.default is not None and self.type is not bool:
            parts.append(f"default {self.default}")
        return "; ".join(parts)


S = Setting
RUN: tuple[Setting, ...] = (
    S("model", str, "minilm-l6", "minilm-l6, a local Hugging Face folder or a Hub name"),
    S("task", str, "multiclass", choices=TASKS, cli=False),  # required on the command line
    # data
    S("text_column", str, "text", "column holding the text", cli=False),
    S("label_column", str, "labels", "column holding the label(s)", cli=False),
    S("label_sep", str, ",", "separator of several labels in one cell (multilabel)", cli=False),
    S("label_columns", tuple, (), "comma-separated 0/1 columns, one per label", cli=False),
    S("pair_column", str, None, "column holding each example's second text: sentence-pair tasks (entailment, "
      "paraphrase, relevance), packed as the checkpoint packs a pair", optional=True, cli=False),
    S("pairs", bool, False, "the run reads sentence pairs (set by fit from its data)", cli=False),
    S("drop_empty", bool, False, "skip rows with empty text instead of stopping", cli=False),
    S("encoding", str, "utf-8", "encoding of the data files", cli=False),
    # 0.1, not 0: without validation there is no early stopping, no best epoch and no tuned
    # threshold, which is not what a user who gave no --valid asked for (README, "Validation")
    S("valid_fraction", float, 0.1, "without --valid, hold out this seeded, stratified fraction of --train for "
      "early stopping, the best epoch and the thresholds (0: train on all of it)", low=0.0, high=1.0, open_high=True),
    # tokenization and model
    S("max_length", int, 128, "tokens per text, special tokens included (at most what the checkpoint reads: its "
      "position table, or model_max_length in its tokenizer_config.json)", low=3, high=8192),
    S("truncation", str, "head", "which tokens a text longer than --max-length keeps", choices=TRUNCATIONS),
    S("pair_truncation", str, "longest_first", "how a sentence pair longer than --max-length is cut, as Hugging "
      "Face cuts it: the longer text first, or only the first or only the second", choices=PAIR_TRUNCATIONS),
    S("pooling", str, "cls", "[CLS], masked mean or max of the last layer, or the last four layers' [CLS] "
      "concatenated or averaged", choices=POOLINGS),
    S("head_layer", str, None, "a dense layer of this activation before the logits: set by keep_head, as the "
      "checkpoint's own classification head has it", choices=(None, "tanh", "relu"), optional=True, cli=False),
    S("dropout", float, 0.1, "dropout before the classification head", low=0.0, high=1.0, open_high=True),
    S("layer_decay", float, 1.0, "layer-wise learning-rate decay: layer l of L gets lr*decay^(L-l), the "
      "embeddings lr*decay^L (Sun et al. use 0.95; 1 is off)", low=0.0, high=1.0, open_low=True),
    S("head_learning_rate", float, None, "learning rate of the classification head (default --lr)",
      flag="--head-lr", low=0.0, open_low=True, optional=True),
    S("class_weight", str, None, "weight classes (multi-class, binary) or positive examples per label "
      "(multi-label) against imbalance", choices=(None, "balanced"), optional=True),
    # long documents
    S("long_doc", str, "truncate", "hierarchical: fine-tune on chunks of --max-length tokens, then classify each "
      "document from its chunks' embeddings (two stages)", choices=LONG_DOC),
    S("chunk_stride", int, 0, "tokens shared by consecutive chunks (less than --max-length - 2)", low=0),
    S("max_chunks", int, 16, "chunks per document at most; longer documents are first cut by --truncation",
      low=1, high=4096),
    S("doc_pooling", str, "lstm", "stage 2: how a document's chunk embeddings are combined", choices=DOC_POOLINGS),
    S("doc_epochs", int, 20, "stage 2 epochs at most (early stopping)", low=1, high=10_000),
    S("doc_learning_rate", float, 1e-3, "stage 2 learning rate (Adam)", flag="--doc-lr", low=0.0, high=1.0,
      open_low=True),
    # training
    S("epochs", int, None, "epochs at most; early stopping keeps the best (default: 3, more on small data: enough "
      "for 360 steps, at most 6)", low=1, high=10_000, optional=True),
    S("batch_size", int, 32, "global batch size (split across devices)", low=1, high=65_536),
    S("learning_rate", float, None, "peak learning rate of AdamW (default: from the checkpoint's width, "
      "2e-4 x (384/width)^2, at most 2e-3: README, What tfclf chooses)", flag="--lr", low=0.0, high=1.0,
      open_low=True, optional=True),
    S("warmup_fraction", float, 0.1, "fraction of steps spent warming up", flag="--warmup", low=0.0, high=1.0),
    S("weight_decay", float, 0.01, "AdamW's decoupled weight decay", low=0.0, high=1.0),
    S("clipnorm", float, 1.0, "clip gradients to this global norm", low=0.0, open_low=True, cli=False),
    S("patience", int, 2, "epochs without improvement before stopping", low=1, high=10_000),
    S("seed", int, 42, low=0, high=MAX_SEED),
    S("strategy", str, "default", "tf.distribute: several GPUs (mirrored), hosts in TF_CONFIG (multiworker) or "
      "a TPU; --batch-size is the global batch", choices=STRATEGIES),
    S("precision", str, "auto", "auto: bf16 matmuls for training (and single-label prediction) on CPUs with "
      "AVX512-BF16 or AMX, float32 elsewhere; matmul_bfloat16 asks for them (refused on CPUs without bf16 instructions); "
      "mixed_float16 on GPUs", choices=PRECISIONS),
    S("xla", bool, False, "compile training and prediction steps with XLA"),
)
BY_NAME = {s.name: s for s in RUN}

# `tfclf pretrain`: the run settings it shares, and its own.
PRETRAIN: tuple[Setting, ...] = (
    BY_NAME["max_length"], dataclasses.replace(BY_NAME["epochs"], default=3, optional=False, help=""),
    BY_NAME["batch_size"],
    dataclasses.replace(BY_NAME["learning_rate"], default=5e-5, optional=False, help="peak learning rate of AdamW"),
    S("mlm_probability", float, 0.15, "share of tokens to predict", low=0.0, high=1.0, open_low=True, open_high=True),
    BY_NAME["seed"],
    dataclasses.replace(BY_NAME["precision"], choices=GRAPH_ONLY,
                        help="auto: bf16 matmuls on CPUs with bf16 instructions, else float32"),
)


# --lr when it is not given, measured on 2,000 GoEmotions comments (docs/BENCHMARKS.md, "Defaults"):
# all-MiniLM-L6-v2 (384 wide) learns as much at 2e-4 as at 4e-4 (dev macro ROC-AUC 0.853, 0.855)
# and less at 1e-4 (0.829); a 128-wide BERT most at 2e-3 (0.673; 0.577 at 2e-4), ten times the rate
# at a third of the width. BERT-base (768) is fine-tuned at 2e-5..5e-5 (Devlin et al. 2019), which
# the square law gives too (5e-5); that one is read, not measured here.
LR_AT_384 = 2e-4
LR_HIGHEST = 2e-3


def default_learning_rate(width: int) -> float:
    """2e-4 x (384 / width)^2, at most 2e-3, to one significant digit: 5e-5 at 768, 3e-5 at 1024."""
    return float(f"{min(LR_HIGHEST, LR_AT_384 * (384 / width) ** 2):.1g}")


# --epochs when it is not given: 3, or on small data as many as make 360 optimizer steps, at most 6.
# Measured on 2,000 GoEmotions comments at 2e-4 (63 steps an epoch): 6 epochs gave dev macro
# ROC-AUC 0.867 where 3 gave 0.853, validation still rising at the sixth; large sets keep 3.
EPOCHS_LEAST, EPOCHS_MOST, STEPS_LEAST = 3, 6, 360


def default_epochs(examples: int, batch_size: int) -> int:
    steps = max(1, -(-examples // batch_size))
    return min(EPOCHS_MOST, max(EPOCHS_LEAST, -(-STEPS_LEAST // steps)))


def chosen(config: "RunConfig", width: int, given: frozenset[str], validation: bool,
           split: tuple[int, int] | None) -> list[str]:
    """What a fit decided for the user, one line each with why: the settings in the table that
    `given` lacks and tfclf chooses (the learning rate from the checkpoint's width, the epochs'
    bound, the share of the training data held out when no validation data came: `split` is
    (held out, all))."""
    lines = []
    if "learning_rate" not in given:
        lines.append(f"learning rate {config.learning_rate:g}, for a {width}-wide checkpoint "
                     f"({LR_AT_384:g} x (384/width)^2, at most {LR_HIGHEST:g}); --lr sets another")
    if "epochs" not in given:
        why = (f"early stopping (patience {config.patience}) keeps the best epoch on the validation set"
               if validation else "no validation set, so the last one is kept")
        lines.append(f"epochs: at most {config.epochs} ({EPOCHS_LEAST}, or enough for {STEPS_LEAST} steps on small "
                     f"data, at most {EPOCHS_MOST}); {why}; --epochs sets another")
    if split is not None and "valid_fraction" not in given:
        lines.append(f"validation: a seeded {config.valid_fraction:.0%} of the training data "
                     f"({split[0]:,} of {split[1]:,}) for early stopping, the best epoch and the thresholds; "
                     "--valid gives a file instead")
    return lines


def check_all(values: dict, table: tuple[Setting, ...] = RUN) -> None:
    """Each value against its setting, then the rules that tie two settings together."""
    for setting in table:
        if setting.name in values:
            setting.check(values[setting.name])
    if values.get("task") == "regression" and values.get("class_weight"):
        raise TfclfError(f"{BY_NAME['class_weight'].said} weights classes: a regression has none")
    if "chunk_stride" in values and "max_length" in values and values["chunk_stride"] >= values["max_length"] - 2:
        raise TfclfError(f"{BY_NAME['chunk_stride'].said} must be less than {BY_NAME['max_length'].said} - 2 "
                         f"({values['max_length'] - 2}), got {values['chunk_stride']}")


def check_positions(max_length: int, positions: int | None, model: str) -> None:
    """--max-length within what the checkpoint reads (backbones.positions): past its position
    embeddings a gather fails deep in TensorFlow on CPU and reads zeros on GPU."""
    if positions is not None and max_length > positions:
        raise TfclfError(f"{BY_NAME['max_length'].said} {max_length} is longer than {model} can read: its positions "
                         f"stop at {positions}")


class _RunConfigMethods:
    def __post_init__(self) -> None:
        self.label_columns = tuple(self.label_columns)
        check_all(dataclasses.asdict(self))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> "RunConfig":
        """A saved config: settings it lacks take their defaults, ones this version does not know
        are ignored; a value out of range is a TfclfError."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


RunConfig = dataclasses.make_dataclass(
    "RunConfig", [(s.name, s.type | None if s.optional else s.type, dataclasses.field(default=s.default))
                  for s in RUN],
    bases=(_RunConfigMethods,), namespace={"__module__": __name__,
                                           "__doc__": "Every setting of a run (the table above)."})
