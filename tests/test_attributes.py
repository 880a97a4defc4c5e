"""Datasets may carry binary attributes per image (faces, CelebA, folder: with a CSV); they are checked on entry."""
import pytest
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError


def images(n: int) -> torch.Tensor:
    return torch.zeros(n, 1, 4, 4, dtype=torch.uint8)


def labels(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.long)


def test_attributes_become_bool_and_are_found_by_name() -> None:
    train = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.uint8)
    test = torch.tensor([[0, 0], [1, 0]])
    data = Dataset("mine", images(3), labels(3), images(2), labels(2), ("a",), attribute_names=("Smiling", "Eyeglasses"),
                   train_attributes=train, test_attributes=test)
    assert data.train_attributes.dtype == torch.bool and data.test_attributes.dtype == torch.bool
    smiling_train, smiling_test = data.attribute("Smiling")
    assert smiling_train.tolist() == [True, False, True] and smiling_test.tolist() == [False, True]
    with pytest.raises(DataError, match="no attribute 'Bald'; its attributes are Smiling, Eyeglasses"):
        data.attribute("Bald")


def test_a_dataset_without_attributes_says_which_have_them() -> None:
    data = Dataset("mine", images(3), labels(3), images(2), labels(2), ("a",))
    assert data.train_attributes is None
    with pytest.raises(DataError, match="has none; faces, celeba:PATH"):
        data.attribute("Smiling")


@pytest.mark.parametrize("train, test, names, needle", [
    (torch.ones(3, 1), torch.ones(2, 2), ("a", "b"), r"train_attributes has shape \(3, 1\); expected \(3, 2\)"),
    (torch.ones(3, 2, dtype=torch.long), torch.full((2, 2), 2), ("a", "b"), "test_attributes must hold 0/1"),
    (torch.ones(3, 2) * 0.5, torch.ones(2, 2), ("a", "b"), "train_attributes must hold 0/1"),
    (None, None, ("a",), "without train_attributes"),
    (torch.ones(3, 1, dtype=torch.long), torch.ones(2, 1, dtype=torch.long), (), "without attribute_names"),
])
def test_malformed_attributes_are_refused(train, test, names, needle) -> None:
    with pytest.raises(DataError, match=needle):
        Dataset("mine", images(3), labels(3), images(2), labels(2), ("a",), attribute_names=names,
                train_attributes=train, test_attributes=test)
