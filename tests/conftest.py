"""Shared fixtures: tiny randomly initialised BERT and DistilBERT checkpoints on disk."""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test runs one pytest worker per core: one TensorFlow thread each, not two pools of
    # two threads fighting over two cores (the tiny models gain nothing from more)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# The longest tests (pytest --durations, 2026-12-03: 15-60 s each) run first. make test's two
# workers split the collection and steal from each other when one runs dry, which balances
# short tests well but cannot split a long one: started last, a long test is a tail that one
# worker runs alone while the other core idles.
LONGEST_FIRST = (
    "test_run_lifecycle.py::", "test_multiworker.py::", "test_classifier.py::test_precision_and_xla_flags",
    "test_reliability.py::test_mirrored_strategy", "test_sklearn.py::test_grid_search", "test_notebooks.py::",
    "test_long_documents.py::test_hierarchical_reads_the_end", "test_reliability.py::test_sigkilled",
    "test_precision.py::test_models_of_two_precisions", "test_long_documents.py::test_hierarchical_cli",
    "test_keras3.py::", "test_long_documents.py::test_label_at_the_end", "test_allocator.py::",
    "test_console.py::test_the_command_hides",
)


def pytest_collection_modifyitems(items: list) -> None:
    def rank(item) -> int:
        return next((i for i, part in enumerate(LONGEST_FIRST) if part in item.nodeid), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _no_process_wide_precision():
    """Fails any test after which the process computes in another precision than it started in: a
    Grappler option (the oneDNN bf16 rewrite tfclf once switched on) or a Keras global dtype policy.
    A precision belongs to a model (runtime/precision.py); tests/test_precision.py also reads the
    source for such calls."""
    yield
    if "tensorflow" in sys.modules:  # a test that never loaded TensorFlow cannot have set them
        import tensorflow as tf
        import tf_keras

        options = {k: v for k, v in tf.config.optimizer.get_experimental_options().items() if v}  # those on
        assert not options, f"a process-wide Grappler option was left on: {options}"
        assert tf_keras.mixed_precision.global_policy().name == "float32", "the Keras global policy was changed"
        assert "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE" not in os.environ


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "precision: the result depends on the precision `auto` chooses: the test "
                            "runs twice, on this CPU's branch and with the other forced (TFCLF_TEST_PRECISION)")


def _other_branch() -> str:
    """The branch of `auto` this CPU does not take: bf16 matmuls where it has no bf16 instructions."""
    from tfclf.runtime.cpu import has_bfloat16_matmuls

    return "float32" if has_bfloat16_matmuls() else "matmul_bfloat16"


def pytest_generate_tests(metafunc) -> None:
    """Tests marked `precision` run on this CPU's branch of `auto` and again with the other one
    forced, so both branches run on every machine (the bf16 one emulated where the CPU has no bf16)."""
    if metafunc.definition.get_closest_marker("precision") is not None:
        metafunc.fixturenames.append("precision_branch")
        other = _other_branch()
        metafunc.parametrize("precision_branch", [None, other], ids=["this-cpu", f"forced-{other}"], indirect=True)


@pytest.fixture
def precision_branch(request, monkeypatch):
    from tfclf.runtime import precision

    if request.param is None:
        monkeypatch.delenv(precision.FORCE, raising=False)
    else:
        monkeypatch.setenv(precision.FORCE, request.param)
    return request.param


# The CPU classes the machines of this project come in, as /proc/cpuinfo shows them. Tests of what
# tfclf decides or prints per class fake these instead of depending on the machine they run on.
CPU_CLASSES = {
    "AVX2": "fpu sse4_2 avx f16c avx2 fma bmi2",  # AMD EPYC Zen 3
    "AVX-512": "fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni",  # Intel Xeon Cascade Lake
    "AVX512-BF16": "fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16",  # AMD EPYC Zen 4
    "AMX": "fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8",
}


# Two computations of the same numbers that differ only in batching or padding agree to float32
# round-off in float32. With bf16 matmuls each product is rounded to an 8-bit mantissa (relative
# 2**-8), and a different blocking of the same matmul can round the other way: the probabilities
# of the tiny models then move by up to 1.3e-3 (seen on an AMX Xeon). 2**-7, two such roundings,
# is the bound the tests allow there.
BF16_ATOL = 2 ** -7


def same_numbers_atol(clf) -> float:
    """How close two of `clf`'s computations of the same probabilities must be, by its precision."""
    return 1e-5 if clf.prediction_precision == "float32" else BF16_ATOL


def skipping_keras_3(env: dict | None = None) -> dict:
    """`env` (default: this process's) for a Python subprocess that uses neither Keras 3 nor tf.keras:
    with TF_USE_LEGACY_KERAS=1 its TensorFlow import skips Keras 3 (~2 s of CPU); tfclf's layers are
    tf_keras either way. Not for tests of what tfclf leaves the user's Keras (test_keras3.py)."""
    return {**(os.environ if env is None else env), "TF_USE_LEGACY_KERAS": "1"}


def fake_bf16_cpu(monkeypatch, has: bool = True) -> None:
    """The CPU has bf16 matmul instructions (or not), and no TFCLF_TEST_PRECISION overrides it."""
    from tfclf.runtime import precision

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: has)
    monkeypatch.delenv(precision.FORCE, raising=False)


def fake_cpuinfo(cpu_class: str) -> str:
    return f"model name\t: a faked {cpu_class} CPU\nflags\t\t: {CPU_CLASSES[cpu_class]}\n"


@pytest.fixture(params=list(CPU_CLASSES))
def cpu_class(request, monkeypatch) -> str:
    """Runs the test once per CPU class, with tfclf reading that class's flags."""
    from tfclf.runtime import cpu

    monkeypatch.setattr(cpu, "_cpuinfo", lambda: fake_cpuinfo(request.param))
    monkeypatch.delenv("TFCLF_TEST_PRECISION", raising=False)  # the choice comes from the flags here
    return request.param


WORDS = ("good great fine nice love happy bad awful poor hate sad terrible the a movie film plot was is "
         "it this that and very not really end start story actor scene day night sport music politics "
         "tech money market game team vote law phone").split()


def write_tiny_checkpoint(folder: Path, model_type: str = "bert", with_head: bool = False, layers: int = 1) -> Path:
    """A Hugging Face-format folder: a tiny random model (model.safetensors under Hugging Face's
    names, written by tfclf), a WordPiece vocabulary and casing. One layer unless a test needs
    layers to tell apart (a fit's steps and traces cost by the op count: 2 layers cost ~30 % more)."""
    import tf_keras as keras

    from tfclf.models import backbones, families, weights

    keras.utils.set_random_seed(0)  # the same tiny weights every run: a test that passes once passes again
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters),
             *".,!?'-", *WORDS])
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    raw = {"model_type": "bert", "vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": layers,
           "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 512} if model_type == "bert" \
        else {"model_type": "distilbert", "vocab_size": len(vocab), "dim": 32, "n_layers": layers, "n_heads": 2,
              "hidden_dim": 64, "max_position_embeddings": 512}
    config = families.read_config(raw)
    config.save_pretrained(folder)
    if with_head:
        from tfclf.models.masked_lm import MaskedLanguageModel
        import numpy as np

        lm = MaskedLanguageModel(backbones.build_backbone(config))
        lm({"input_ids": np.zeros((1, 2), np.int32), "attention_mask": np.ones((1, 2), np.int32)})
        tensors = weights.to_hugging_face(lm.encoder, lm.head)
    else:
        tensors = weights.to_hugging_face(backbones.build_backbone(config))
    weights.write_safetensors(folder / "model.safetensors", tensors)
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true}', encoding="utf-8")
    return folder


def reference_ids(folder: Path, texts: list[str], special: bool = True, max_length: int | None = None) -> list:
    """The ids Hugging Face's tokenizer gives, from the tokenizers package (the Rust library behind
    transformers' AutoTokenizer): the folder's tokenizer.json where it has one, else a
    BertWordPieceTokenizer from vocab.txt and tokenizer_config.json, as AutoTokenizer builds it."""
    import json

    from tokenizers import BertWordPieceTokenizer, Tokenizer

    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
    else:
        settings = json.loads((folder / "tokenizer_config.json").read_text()) \
            if (folder / "tokenizer_config.json").is_file() else {}
        tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=settings.get("do_lower_case", True),
                                           strip_accents=settings.get("strip_accents"),
                                           handle_chinese_chars=settings.get("tokenize_chinese_chars", True))
    if max_length:
        tokenizer.enable_truncation(max_length)
    return [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=special)]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_bert_two_layers(tmp_path_factory) -> Path:
    """For what needs layers to tell apart: layer-wise learning rates, last-four-layer pooling."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert-2"), "bert", layers=2)


@pytest.fixture(scope="session")
def tiny_distilbert_two_layers(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-distilbert-2"), "distilbert", layers=2)


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-distilbert"), "distilbert")


def signal_texts(n: int, seed: int = 0, classes=("pos", "neg")):
    """Generated texts whose class is given by one cue word among filler words."""
    import numpy as np

    cues = {"pos": ["good", "great", "love"], "neg": ["bad", "awful", "hate"],
            "sport": ["game", "team"], "politics": ["vote", "law"], "tech": ["phone", "tech"]}
    filler = ["the", "movie", "was", "plot", "film", "day", "story", "scene", "really", "very"]
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = classes[rng.integers(len(classes))]
        words = list(rng.choice(filler, size=rng.integers(3, 14)))
        words.insert(rng.integers(0, len(words) + 1), rng.choice(cues[label]))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


FAST = dict(epochs=4, learning_rate=3e-3, batch_size=16, max_length=32)  # the tiny models learn their cues so


def multilabel_texts(n, seed):
    """Labels 'pos' and 'sport' appear independently; each has its own cue word."""
    import numpy as np

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words, names = list(rng.choice(["the", "film", "was", "day", "story"], size=rng.integers(2, 8))), []
        for name, cue in (("pos", "love"), ("sport", "team")):
            if rng.random() < 0.4:
                words.insert(rng.integers(0, len(words) + 1), cue)
                names.append(name)
        texts.append(" ".join(words))
        labels.append(names)
    return texts, labels


@pytest.fixture(scope="session")
def tiny_multilabel_run(tmp_path_factory, tiny_bert) -> Path:
    """A run folder of a tiny BERT fitted on a two-label task with validation (tuned thresholds).
    Tests that write into a run copy it first."""
    from tfclf import TextClassifier

    folder = tmp_path_factory.mktemp("tiny-multilabel") / "run"
    X, y = multilabel_texts(600, 0)
    Xv, yv = multilabel_texts(200, 1)
    # one random tiny model: with this draw 4 epochs reach macro-F1 0.88, 6 reach 1.0 (early stopping decides)
    TextClassifier.from_pretrained(str(tiny_bert), task="multilabel", **{**FAST, "epochs": 6}).fit(
        X, y, valid=Xv, valid_labels=yv, run_dir=folder, verbose=0)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_bert) -> Path:
    """A real run folder: `tfclf train` of a tiny BERT on a three-class cue-word task."""
    import pandas as pd

    from tfclf.cli import main

    folder = tmp_path_factory.mktemp("tiny-run")
    for name, n, seed in (("train", 600, 0), ("valid", 150, 1)):
        texts, labels = signal_texts(n, seed, classes=("sport", "politics", "tech"))
        pd.DataFrame({"text": texts, "labels": labels}).to_csv(folder / f"{name}.csv", index=False)
    status = main(["train", "--train", str(folder / "train.csv"), "--valid", str(folder / "valid.csv"),
                   "--task", "multiclass", "--model", str(tiny_bert), "--epochs", "4", "--lr", "3e-3",
                   "--max-length", "32", "--batch-size", "16", "--out", str(folder / "run")])
    assert status == 0
    return folder


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory):
    """tiny_run's float32 classifier and its SavedModel (version 1 under base): (clf, path, base).
    Tests read it; test_export's layout test adds version 2 beside it."""
    from tfclf import TextClassifier
    from tfclf.serving.export import export

    base = tmp_path_factory.mktemp("saved") / "tiny"
    clf = TextClassifier.load(tiny_run / "run", precision="float32")  # as the SavedModel: like with like
    return clf, export(clf, base), base
