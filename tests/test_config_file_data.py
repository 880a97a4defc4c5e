"""A hand-written `genlab train --config` file: a `data` entry that is not the mapping genlab reads is refused in
one line listing the keys it wants, and docs/extending.md's hand-written YAML trains as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import fails

from genlab.cli import main
from genlab.runs.record import read_record

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
KEYS = ("spec", "data_dir", "image_size", "channels")


@pytest.mark.parametrize("data, named", [("shapes", "'shapes'"), ("[shapes]", "list"),
                                         ("{dataset: shapes}", "dataset"), ("{spec: shapes, size: 32}", "size")],
                         ids=["a-name", "a-list", "an-unknown-key", "a-second-unknown-key"])
def test_a_data_entry_genlab_cannot_read_lists_the_keys_it_wants(tmp_path, capsys, data, named) -> None:
    config = tmp_path / "hand.yaml"
    config.write_text(f"model: vae\ndata: {data}\ntrain:\n  epochs: 1\n", encoding="utf-8")
    fails(["train", "--config", str(config), "--out", str(tmp_path / "run")], capsys, str(config), named, *KEYS)
    assert not (tmp_path / "run").exists()


def test_the_hand_written_yaml_of_the_docs_trains_as_written(tmp_path, monkeypatch) -> None:
    example = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL).group(1)
    (tmp_path / "shapes-vae.yaml").write_text(example, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "shapes-vae.yaml", "--max-steps", "3", "--out", "run"]) == 0
    record = read_record(tmp_path / "run")
    assert record.model == "vae" and record.data.spec == "shapes" and record.data.image_shape == (1, 64, 64)
    assert record.model_config.latent_dim == 8 and record.train.epochs == 1
