"""docs/tutorial.ipynb runs top to bottom in a fresh kernel (on small settings) and is kept without outputs."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
SMALL = 'EPOCHS = 1\nMAX_STEPS = 40\nTEST_IMAGES = 300\nOUT = "runs/tutorial-vae-bn"\n'


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_notebook_runs_and_shows_its_pictures_inline(tmp_path, monkeypatch) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and set(parameters[0].source.split()) >= {"EPOCHS", "MAX_STEPS", "TEST_IMAGES", "OUT"}
    parameters[0].source = SMALL
    # the kernel imports this checkout's genlab, on one thread beside the other tests
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 6  # the data, samples, reconstructions, manifold, scatter, attribute vector
    text = "".join(output.get("text", "") for output in outputs)
    assert "last epoch: test loss" in text and "IWAE" in text.upper()
    assert (tmp_path / "runs" / "tutorial-vae-bn" / "report.html").is_file()
