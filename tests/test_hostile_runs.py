"""Generated hostile config.json and state.pt files: only genlab's own one-line errors come back."""
from __future__ import annotations

import copy
import json

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.errors import GenlabError
from genlab.models.registry import create_model
from genlab.options import TrainConfig
from genlab.runs import record as records
from genlab.runs import store as runs

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=4), max_leaves=12)


def valid_record() -> dict:
    model = create_model("vae", hidden=(8,), latent_dim=2)
    data = records.DataRecord(spec="shapes", name="shapes", image_shape=(1, 28, 28))
    return records.RunRecord("vae", model.config, data, TrainConfig()).to_dict()


RECORD = valid_record()
PATHS = [(section, key) for section in ("model_config", "data", "train") for key in RECORD[section]] + \
        [(None, key) for key in RECORD]


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=4))
def test_mutated_config_json_is_read_or_refused_in_one_line(tmp_path_factory, changes) -> None:
    record = copy.deepcopy(RECORD)
    for (section, key), value in changes:
        target = record if section is None else record[section]
        if isinstance(target, dict):
            target[key] = value
    folder = tmp_path_factory.mktemp("run")
    (folder / "config.json").write_text(json.dumps(record))
    try:
        parsed = records.read_record(folder)
    except GenlabError as err:
        assert "\n" not in str(err)
        return
    create_model(parsed.model, **parsed.model_config.to_dict())  # what was accepted builds within bounds


STATES = st.recursive(st.none() | st.integers(-5, 10) | st.text(max_size=8)
                      | st.builds(lambda n: torch.zeros(n, dtype=torch.uint8), st.integers(0, 8)),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                          st.sampled_from(["epoch", "step", "rng_cpu", "optimizers", "model", "metrics", "x"]),
                          inner, max_size=6), max_leaves=10)


@FUZZ
@given(state=STATES)
def test_a_state_of_any_structure_is_loaded_checked_or_refused(tmp_path_factory, state) -> None:
    folder = tmp_path_factory.mktemp("state")
    torch.save(state, folder / "state.pt")
    try:
        runs.load_state(folder)
    except GenlabError as err:
        assert "\n" not in str(err) and "not a genlab checkpoint" in str(err)
