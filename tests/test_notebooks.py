"""The notebooks run top to bottom (small-sample mode), so they never rot.

They run on the tiny random checkpoint: the code path is what can rot, and MiniLM itself is
loaded by the integration tests and `make demo`. This keeps three notebooks at seconds, not minutes.
"""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch, tiny_bert):
    import nbclient
    import nbformat

    monkeypatch.setenv("TFCLF_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TFCLF_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("TFCLF_NOTEBOOK_MODEL", str(tiny_bert))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()  # raises CellExecutionError, with the failing cell and traceback, on any error
    finally:
        nbformat.write(notebook, tmp_path / path.name)  # the executed copy, to look at after a failure
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {}) for o in outputs), \
        "every notebook draws at least one plot"
