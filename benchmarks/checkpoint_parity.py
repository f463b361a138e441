"""A real checkpoint folder against transformers (PyTorch): last hidden states on GoEmotions texts,
and the tokenizer's ids (one text and pairs) on all of GoEmotions dev.

    python benchmarks/checkpoint_parity.py FOLDER --reference-python /tmp/ref/bin/python [--texts 100]

The reference side runs in a Python with torch and transformers (`--reference-python`, as
tests/fixtures/families/make.py does); this one in tfclf's. Prints the largest difference of the
hidden states and the count of texts and pairs whose ids differ; writes
benchmarks/results/checkpoint-parity-MODEL_TYPE.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOEMOTIONS = ROOT.parent / "shared" / "data" / "goemotions" / "dev.tsv"
REFERENCE = """
import json, sys
import numpy as np, torch
from transformers import AutoModel
from tokenizers import Tokenizer
folder, texts_file, out = sys.argv[1:4]
texts = json.loads(open(texts_file).read())
tok = Tokenizer.from_file(folder + "/tokenizer.json")
tok.no_truncation(); tok.no_padding()
singles = [e.ids for e in tok.encode_batch(texts["all"])]
tok.enable_truncation(128)
pairs = [e.ids for e in tok.encode_batch(list(zip(texts["all"], texts["all"][1:] + texts["all"][:1])))]
tok.enable_padding(pad_id=tok.token_to_id("<pad>") or 0); tok.no_truncation()
enc = tok.encode_batch(texts["model"])
ids, mask = np.array([e.ids for e in enc]), np.array([e.attention_mask for e in enc])
model = AutoModel.from_pretrained(folder).eval()
with torch.no_grad():
    hidden = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
np.savez(out, ids=ids, mask=mask, hidden=hidden)
open(out + ".json", "w").write(json.dumps({"singles": singles, "pairs": pairs}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--reference-python", required=True)
    parser.add_argument("--texts", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    from tfclf.data.examples import clean_text
    from tfclf.models import backbones
    from tfclf.runtime.cpu import describe
    from tfclf.text.wordpiece import WordPieceTokenizer

    texts = [clean_text(line.split("\t")[0]) for line in GOEMOTIONS.read_text("utf-8").splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "texts.json").write_text(json.dumps({"all": texts, "model": texts[:args.texts]}))
        out = str(Path(tmp) / "ref.npz")
        subprocess.run([args.reference_python, "-c", REFERENCE, str(args.folder), str(Path(tmp) / "texts.json"), out],
                       check=True)
        ref, ref_ids = np.load(out), json.loads(Path(out + ".json").read_text())
    config = backbones.backbone_config(args.folder)
    spec = backbones.tokenizer_spec(args.folder, config)
    tokenizer = WordPieceTokenizer(spec, max_length=100_000)
    singles = [r.tolist() for r in tokenizer.tokenize(tf.constant(texts)).numpy()]
    pair_tokenizer = WordPieceTokenizer(spec, max_length=128)
    pairs, _ = pair_tokenizer.tokenize_pairs(tf.constant(texts), tf.constant(texts[1:] + texts[:1]))
    pairs = [r.tolist() for r in pairs.numpy()]
    encoder = backbones.build_backbone(config, args.folder)
    ids, mask = ref["ids"].astype(np.int32), ref["mask"].astype(np.int32)
    hidden = encoder(input_ids=ids, attention_mask=mask)["last_hidden_state"].numpy()
    real = mask.astype(bool)
    result = {"folder": str(args.folder), "model_type": config.model_type, "cpu": describe(),
              "hidden_texts": int(len(ids)), "hidden_max_abs_difference": float(np.abs(hidden - ref["hidden"])[real].max()),
              "tokenizer_texts": len(texts),
              "single_mismatches": sum(a != b for a, b in zip(singles, ref_ids["singles"])),
              "pair_mismatches_at_128": sum(a != b for a, b in zip(pairs, ref_ids["pairs"]))}
    path = ROOT / "benchmarks" / "results" / f"checkpoint-parity-{config.model_type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
