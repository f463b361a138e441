"""Further pre-training: BERT's masking rule, and a checkpoint that tfclf train fine-tunes."""
import numpy as np
import pandas as pd
import pytest

from conftest import fake_bf16_cpu, signal_texts
from tfclf import TextClassifier
from tfclf.cli import main
from tfclf.training.pretraining import IGNORE, mask_tokens

MASK, VOCAB = 4, 1000


def batch(rows=400, length=60, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(10, VOCAB, size=(rows, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS], [SEP]
    ids[::2, -10:] = 0  # padding on every other row
    special = np.isin(ids, [0, 2, 3])
    return ids, special


def test_masking_picks_15_percent_and_splits_80_10_10():
    ids, special = batch()
    inputs, labels = mask_tokens(ids, special, np.zeros_like(special), VOCAB, np.random.default_rng(1),
                                 mask_id=MASK)
    picked = labels != IGNORE
    assert not picked[special].any()
    assert picked.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)
    np.testing.assert_array_equal(labels[picked], ids[picked])  # the targets are the originals
    masked = (inputs == MASK) & picked
    kept = (inputs == ids) & picked
    assert masked.sum() / picked.sum() == pytest.approx(0.8, abs=0.02)
    assert kept.sum() / picked.sum() == pytest.approx(0.1 + 0.1 / VOCAB, abs=0.02)
    np.testing.assert_array_equal(inputs[~picked], ids[~picked])  # nothing else changes


def test_whole_word_masking_takes_every_piece_of_a_word():
    ids, special = batch()
    rng = np.random.default_rng(2)
    continuation = (rng.random(ids.shape) < 0.4) & ~special
    continuation[:, 1] = False  # the first piece after [CLS] starts a word
    _, labels = mask_tokens(ids, special, continuation, VOCAB, rng, whole_word=True, mask_id=MASK)
    picked = labels != IGNORE
    for row in range(ids.shape[0]):
        for j in range(2, ids.shape[1]):
            if continuation[row, j] and not special[row, j]:
                assert picked[row, j] == picked[row, j - 1], (row, j)  # same word, same fate
    assert picked.sum() / (~special).sum() == pytest.approx(0.15, abs=0.02)


@pytest.mark.precision
def test_pretrain_lowers_the_mlm_loss_and_the_checkpoint_fine_tunes(tiny_bert, tmp_path):
    texts, _ = signal_texts(600, 0)
    (tmp_path / "corpus.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "further"
    assert main(["pretrain", "--text", str(tmp_path / "corpus.txt"), "--model", str(tiny_bert), "--out", str(out),
                 "--epochs", "3", "--max-length", "32", "--batch-size", "16", "--lr", "1e-3", "--whole-word"]) == 0
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    losses = [float(v) for v in (out / "pretraining_loss.txt").read_text().split()]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    X, y = signal_texts(400, 1)
    # 3 epochs sat on the edge (0.47-1.0 over random tiny models); 6 reached 1.0 on every one tried
    clf = TextClassifier.from_pretrained(str(out), task="binary", epochs=6, batch_size=16, max_length=32,
                                         learning_rate=3e-3)
    clf.fit(X, y, verbose=0)
    assert clf.evaluate(*signal_texts(100, 2))["accuracy"] > 0.9


def test_pretrain_trains_with_bf16_matmuls_and_writes_a_float32_checkpoint(tiny_bert, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    from tfclf.models import backbones
    from tfclf.training.pretraining import pretrain

    fake_bf16_cpu(monkeypatch)
    built = []
    real = backbones.masked_language_model
    monkeypatch.setattr(backbones, "masked_language_model", lambda *a: built.append(a[2]) or real(*a))
    texts, _ = signal_texts(200, 0)
    weights = {}
    for name in ("float32", "matmul_bfloat16", "auto"):
        out = pretrain(texts, str(tiny_bert), tmp_path / name, max_length=32, epochs=1, batch_size=16,
                       learning_rate=1e-3, precision=name, verbose=0)
        weights[name] = load_file(str(out / "model.safetensors"))
    assert built == ["float32", "matmul_bfloat16", "matmul_bfloat16"]  # auto: bf16 on a bf16 CPU
    assert weights["float32"].keys() == weights["matmul_bfloat16"].keys()
    assert {w.dtype.name for w in weights["matmul_bfloat16"].values()} == {"float32"}  # a float32 checkpoint
    moved = max(np.abs(weights["float32"][k] - weights["matmul_bfloat16"][k]).max() for k in weights["float32"])
    assert 1e-6 < moved < 1e-2  # bf16 really ran, and changed the training only by rounding
    for key, value in weights["auto"].items():
        np.testing.assert_array_equal(value, weights["matmul_bfloat16"][key])  # the same seed, the same model


def test_pretrain_input_errors(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    pd.DataFrame({"body": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    for argv, expected in ((["--text", str(tmp_path / "missing.txt")], "no such file"),
                           (["--text", str(tmp_path / "empty.txt")], "no text to pre-train on"),
                           (["--text", str(tmp_path / "t.csv")], "text")):
        assert main(["pretrain", *argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tfclf: error:") and expected in err and "Traceback" not in err


def test_pretrain_checks_the_weights_as_training_does(tiny_bert, tmp_path, capsys, monkeypatch, cpu_class):
    """A checkpoint folder without weights, or with PyTorch-only weights and no torch, is one
    line and exit 2 from `tfclf pretrain` as from `tfclf train`, not a transformers traceback;
    on every CPU class (a bf16 CPU's notice came before the error, and the test counted lines)."""
    import importlib.util

    folder = tmp_path / "no-weights"
    folder.mkdir()
    for name in ("config.json", "vocab.txt"):
        (folder / name).write_bytes((tiny_bert / name).read_bytes())
    (tmp_path / "t.txt").write_text("a text to pre-train on\n", encoding="utf-8")
    argv = ["pretrain", "--text", str(tmp_path / "t.txt"), "--model", str(folder), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("tfclf:")] == [
        f"tfclf: error: --model {folder}: no tf_model.h5, model.safetensors or pytorch_model.bin weights"], err
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tfclf:")]
    assert len(lines) == 1 and lines[0].startswith(f"tfclf: error: --model {folder}: only PyTorch weights"), err
    assert not (tmp_path / "o").exists()
