"""The run config: every setting of a run, saved as config.json in its folder."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tfclf.data import TASKS, Columns
from tfclf.errors import TfclfError
from tfclf.io import atomic_write_json, read_json
from tfclf.precision import POLICIES


STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
LONG_DOC = ("truncate", "hierarchical")
DOC_POOLINGS = ("lstm", "mean", "max", "attention")
PRECISIONS = tuple(POLICIES)  # what each one means: tfclf/precision.py


@dataclasses.dataclass
class RunConfig:
    model: str = "minilm-l6"
    task: str = "multiclass"
    # data
    text_column: str = "text"
    label_column: str = "labels"
    label_sep: str = ","
    label_columns: tuple[str, ...] = ()
    drop_empty: bool = False
    encoding: str = "utf-8"
    valid_fraction: float = 0.0
    # tokenization and model
    max_length: int = 128
    truncation: str = "head"
    pooling: str = "cls"
    dropout: float = 0.1
    layer_decay: float = 1.0  # layer-wise learning-rate decay ξ (1: off)
    head_learning_rate: float | None = None  # the head's own learning rate (default: learning_rate)
    class_weight: str | None = None  # None or "balanced"
    # long documents: truncate to max_length, or the two-stage hierarchical model
    long_doc: str = "truncate"
    chunk_stride: int = 0  # tokens shared by consecutive chunks
    max_chunks: int = 16
    doc_pooling: str = "lstm"  # stage 2: lstm | mean | max | attention over the chunk embeddings
    doc_epochs: int = 20
    doc_learning_rate: float = 1e-3
    # training
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    clipnorm: float = 1.0
    patience: int = 2
    seed: int = 42
    strategy: str = "default"  # default | mirrored | multiworker | tpu
    precision: str = "auto"  # auto | float32 | matmul_bfloat16 | mixed_bfloat16 | mixed_float16
    xla: bool = False  # compile the train and predict steps with XLA (jit_compile)

    def __post_init__(self) -> None:
        self.label_columns = tuple(self.label_columns)
        if self.task not in TASKS:
            raise TfclfError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not 3 <= self.max_length <= 512:
            raise TfclfError(f"--max-length must be between 3 and 512, got {self.max_length}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise TfclfError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise TfclfError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise TfclfError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.long_doc not in LONG_DOC:
            raise TfclfError(f"--long-doc must be one of {', '.join(LONG_DOC)}, got {self.long_doc!r}")
        if self.doc_pooling not in DOC_POOLINGS:
            raise TfclfError(f"--doc-pooling must be one of {', '.join(DOC_POOLINGS)}, got {self.doc_pooling!r}")
        if self.max_chunks < 1 or self.doc_epochs < 1:
            raise TfclfError("--max-chunks and --doc-epochs must be at least 1")
        if not 0 <= self.chunk_stride < self.max_length - 2:
            raise TfclfError(f"--chunk-stride must be between 0 and --max-length - 3, got {self.chunk_stride}")
        if not 0 < self.layer_decay <= 1:
            raise TfclfError(f"--layer-decay must be in (0, 1], got {self.layer_decay}")
        if self.class_weight not in (None, "balanced"):
            raise TfclfError(f"--class-weight must be 'balanced' or absent, got {self.class_weight!r}")
        if self.learning_rate <= 0:
            raise TfclfError(f"--lr must be positive, got {self.learning_rate}")

    @property
    def hierarchical(self) -> bool:
        return self.long_doc == "hierarchical"

    @property
    def columns(self) -> Columns:
        return Columns(self.text_column, self.label_column, self.label_sep or None, self.label_columns)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, dataclasses.asdict(self))

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "RunConfig":
        """The config of a run folder; a folder without one is a user mistake, said in one line."""
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise TfclfError(f"{run_dir}: not a tfclf run folder (no config.json)")
        return cls.load(path)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in read_json(path).items() if k in known})
