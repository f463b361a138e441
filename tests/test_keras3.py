"""tfclf beside Keras 3 in a notebook kernel: importing tfclf leaves `tf.keras` as the process has it
(Keras 3, in either import order), and a tfclf SavedModel serves through keras.layers.TFSMLayer."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _run_in_kernel(cells: list[str], tmp_path, monkeypatch) -> list[str]:
    """Each cell's printed lines, from a fresh notebook kernel (a fresh process)."""
    import nbclient
    import nbformat

    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return [o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []) if o.get("name") == "stdout"]


def test_tfclf_leaves_keras_3_and_its_saved_model_serves_through_tfsmlayer(tiny_run, exported, tmp_path, monkeypatch):
    clf, saved, _ = exported
    texts = pd.read_csv(tiny_run / "valid.csv")["text"].tolist()[:8]
    expected = clf.predict_proba(texts)
    out = _run_in_kernel([
        "import tensorflow as tf\nimport keras\nimport tfclf\nfrom tfclf import TextClassifier",
        f"clf = TextClassifier.load({str(tiny_run / 'run')!r}, precision='float32')\n"
        f"texts = {json.dumps(texts)}\nours = clf.predict_proba(texts)",
        # the user's own Keras 3 model next to tfclf's
        "mine = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\nmine(ours[:, :3])\n"
        "print('tf.keras', tf.keras.__version__, type(mine).__module__)",
        f"layer = keras.layers.TFSMLayer({str(saved)!r}, call_endpoint='serving_default')\n"
        "served = layer(tf.constant(texts))['probabilities']\n"
        "import json; print(json.dumps({'served': served.numpy().tolist(), 'ours': ours.tolist()}))",
    ], tmp_path, monkeypatch)
    assert out[0].startswith("tf.keras 3.") and "keras" in out[0], out
    found = json.loads(out[1])
    np.testing.assert_allclose(found["served"], expected, atol=1e-5)
    np.testing.assert_allclose(found["ours"], expected, atol=1e-6)


def test_importing_tfclf_first_leaves_keras_3_too(tmp_path, monkeypatch):
    out = _run_in_kernel(["import tfclf\nfrom tfclf import build_classifier\nimport tensorflow as tf\nimport keras\n"
                          "print(tf.keras.__version__, keras.__version__)"], tmp_path, monkeypatch)
    assert out[0].split()[0].startswith("3.") and out[0].split()[0] == out[0].split()[1], out
