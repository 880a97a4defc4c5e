"""evaluate says what its test set is: gray levels for one channel, RGB values for three."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from genlab import evaluation
from genlab.data.catalog import adapt
from genlab.data.shapes import make_shapes
from genlab.options import EvaluationOptions


@pytest.mark.parametrize("channels, says, never", [(1, "gray levels in [0, 1]", "RGB"),
                                                   (3, "RGB values in [0, 1]", "gray")])
def test_the_test_set_is_described_by_its_channels(channels, says, never) -> None:
    data = adapt(make_shapes(n_train=8, n_test=4, seed=0), None, channels)
    record = SimpleNamespace(model="conv-vae", train=SimpleNamespace(binarize="none"))
    run = SimpleNamespace(path="runs/x", record=record)
    header = evaluation.evaluation_header(run, data, EvaluationOptions(), 4)
    assert says in header["test_set"] and never not in header["test_set"]
