"""`tfclf export --format openvino`: one OpenVINO model from raw text to the SavedModel's answers,
in TF Serving's version folders, equal to the run's float32 probabilities; the precision it was
exported in is the one it compiles in; what it cannot export is refused in one line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("openvino_tokenizers", reason="the openvino extra is not installed (make test installs it)")

from conftest import BF16_ATOL  # noqa: E402
from tfclf import TextClassifier  # noqa: E402
from tfclf.cli import main  # noqa: E402
from tfclf.serving.openvino_export import compile_export  # noqa: E402

HARD = ["", "   ", "naïve café 😀", "ctrl\x00\x07 tab\t", "\ufffdsport", "ΟΔΟΣ σοφός straße", "team " * 200]


def test_the_export_answers_from_raw_text_as_the_run_does(tiny_run, tmp_path, capsys):
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()[:40] + HARD
    clf = TextClassifier.load(tiny_run / "run", precision="float32")
    assert main(["export", "--run", str(tiny_run / "run"), "--out", str(tmp_path / "m"), "--format", "openvino"]) == 0
    assert "exported" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1"]
    assert sorted(p.name for p in (tmp_path / "m" / "1").iterdir()) == ["model.bin", "model.xml"]
    compiled = compile_export(tmp_path / "m" / "1")
    assert compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"  # not bf16, even on a bf16 CPU
    assert [i.get_any_name() for i in compiled.inputs] == ["text"]
    found = compiled({"text": np.array(texts)})
    np.testing.assert_allclose(found["probabilities"], clf.predict_proba(texts), atol=1e-5)
    assert [str(v) for v in found["label"]] == clf.predict(texts)
    # a process that only serves (no TensorFlow, no tfclf export) reads the version and answers the same
    code = ("import sys, numpy as np; from tfclf.serving.openvino_export import compile_export; "
            "print(compile_export(sys.argv[1])({'text': np.array(sys.argv[2:])})['probabilities'].tolist()); "
            "assert 'tensorflow' not in sys.modules")
    served = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m" / "1"), *texts[:3]], capture_output=True,
                            text=True, timeout=300)
    assert served.returncode == 0, served.stderr[-2000:]
    np.testing.assert_allclose(json.loads(served.stdout.splitlines()[-1]), found["probabilities"][:3], atol=1e-6)
    # the next export is the next version; the first is left as it was
    before = (tmp_path / "m" / "1" / "model.bin").read_bytes()
    assert clf.export(tmp_path / "m", format="openvino", precision="bfloat16") == tmp_path / "m" / "2"
    assert (tmp_path / "m" / "1" / "model.bin").read_bytes() == before
    bf16 = compile_export(tmp_path / "m" / "2")
    assert bf16.get_property("INFERENCE_PRECISION_HINT").to_string() in ("bf16", "f32")  # f32 where the CPU has no bf16
    np.testing.assert_allclose(bf16({"text": np.array(texts)})["probabilities"], found["probabilities"],
                               atol=BF16_ATOL)


def test_a_multilabel_export_decides_with_the_runs_thresholds(tiny_multilabel_run, tmp_path):
    clf = TextClassifier.load(tiny_multilabel_run, precision="float32")
    texts = ["the film love team", "the day story", "love", "team day"] + HARD
    import openvino as ov

    folder = clf.export(tmp_path / "m", format="openvino")
    found = compile_export(folder)({"text": np.array(texts)})
    np.testing.assert_allclose(found["probabilities"], clf.predict_proba(texts), atol=1e-5)
    classes = ov.Core().read_model(str(folder / "model.xml")).get_rt_info(["tfclf", "classes"]).astype(str)
    named = [[name for name, on in zip(classes.split(","), row) if on] for row in found["decisions"]]
    assert named == clf.predict(texts) and classes.split(",") == list(clf.classes_)


def test_what_it_cannot_export_is_refused_in_one_line(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run / "run", tmp_path / "run")
    config = (run / "config.json").read_text().replace('"truncation": "head"', '"truncation": "tail"')
    (run / "config.json").write_text(config)
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m"), "--format", "openvino"]) == 2
    err = capsys.readouterr().err
    assert "--truncation tail" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
