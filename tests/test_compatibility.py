"""Run folders written before the core was split into parts (commit e940eea) still load and
answer as they did then. tests/fixtures/run-folders-e940eea/make.py wrote them with that commit's
tfclf, with the probabilities it gave for a few probe texts (expected.json)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfclf import TextClassifier
from tfclf.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "run-folders-e940eea"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
# written by commit 0d775f7, the last with transformers' TF classes inside (tfclf's own layers since):
# a DistilBERT run and a last-four-layers pooling beside BERT's, all read through a variable-name map
LAST = Path(__file__).parent / "fixtures" / "run-folders-0d775f7"
RUNS = [(FIXTURES, "binary"), (FIXTURES, "hierarchical-multilabel")] + \
    [(LAST, run) for run in ("binary", "distilbert-multiclass-mean", "bert-last4-concat", "hierarchical-multilabel")]


@pytest.mark.parametrize("folder,run", RUNS, ids=[f"{f.name.split('-')[-1]}-{r}" for f, r in RUNS])
def test_an_old_run_folder_loads_and_predicts_as_it_did(folder, run):
    expected_file = json.loads((folder / "expected.json").read_text())
    probe = expected_file["probe_documents" if run.startswith("hierarchical") else "probe"]
    clf = TextClassifier.load(folder / run, precision="float32")  # the fixtures are float32 on any CPU
    probs = clf.predict_proba(probe)
    expected = np.array(expected_file["probabilities"][run]).reshape(len(probe), -1)
    if clf.config.task == "binary" and expected.shape[1] == 1:  # the positive class's unit then, both columns now
        expected = np.concatenate([1 - expected, expected], axis=1)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    if run == "hierarchical-multilabel":
        assert clf.predict(probe) == expected_file["probabilities"]["hierarchical-multilabel-labels"]


def test_an_old_run_folder_evaluates_and_reports_from_the_cli(tmp_path, capsys):
    run = tmp_path / "binary"
    shutil.copytree(FIXTURES / "binary", run)
    data = tmp_path / "probe.csv"
    data.write_text("text,labels\n" + "".join(f"{t},{'pos' if 'good' in t or 'great' in t or 'love' in t else 'neg'}\n"
                                               for t in EXPECTED["probe"]))
    assert main(["evaluate", "--run", str(run), "--data", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == len(EXPECTED["probe"])
    assert main(["report", "--run", str(run)]) == 0
    assert (run / "report.md").is_file()


def test_chunk_features_of_a_one_stage_run_is_a_clear_error():
    from tfclf.errors import TfclfError

    with pytest.raises(TfclfError, match="chunk_features needs a hierarchical run"):
        TextClassifier.load(FIXTURES / "binary").chunk_features(["a text"])
