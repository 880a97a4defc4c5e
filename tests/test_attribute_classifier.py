"""The attribute classifier: one sigmoid per binary attribute, fed the attribute rows of each batch's images."""
from __future__ import annotations

import pytest
import torch
from cli_helpers import fails

from genlab.errors import DataError
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.models.registry import create_model, data_fields
from genlab.nn import gaussian_blur
from genlab.training.schedule import stratified_sample
from genlab.training.trainer import train

TINY = {"conv_channels": (4, 8), "feature_dim": 16}


def attribute_classifier(data, **overrides) -> Classifier:
    fields = data_fields("attribute-classifier", data.image_shape, len(data.classes), len(data.attribute_names))
    return create_model("attribute-classifier", **fields, **TINY, **overrides)


def test_the_loss_is_binary_cross_entropy_summed_over_attributes() -> None:
    model = create_model("attribute-classifier", image_shape=(3, 16, 16), n_attributes=5, **TINY).eval()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y = (torch.rand(6, 5, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    parts = model.loss(x, y)
    p = torch.sigmoid(model.logits(x).double())
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).sum(1).mean()  # nats per image
    assert torch.allclose(parts["loss"].double(), expected, rtol=1e-5)
    assert parts["accuracy"].item() == pytest.approx(((p > 0.5) == y.bool()).double().mean().item())
    assert torch.equal(model.predict(x), p > 0.5)


def test_the_classes_classifier_is_unchanged() -> None:
    model = create_model("classifier", n_classes=3, **TINY).eval()
    assert model.targets == "classes" and model.head[-1].out_features == 3
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 1])
    assert torch.allclose(model.loss(x, y)["loss"], torch.nn.functional.cross_entropy(model.logits(x), y))


def test_the_data_decides_the_attribute_count_only_for_attribute_targets() -> None:
    shape = (3, 64, 64)
    assert "n_attributes" not in data_fields("classifier", shape, 2, 8)
    assert data_fields("attribute-classifier", shape, 2, 8)["n_attributes"] == 8
    assert data_fields("classifier", shape, 2, 8, {"targets": "attributes"})["n_attributes"] == 8
    assert "n_attributes" not in data_fields("attribute-classifier", shape, 10, 0)  # the trainer refuses it
    assert "n_classes" not in data_fields("attribute-classifier", shape, 1, 8)  # a folder of unsorted images


class Recording(Classifier):
    """The attribute classifier, keeping every batch its loss is given."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def loss(self, x, y):
        self.seen.append((x.detach().clone(), y.detach().clone()))
        return super().loss(x, y)


def test_each_batch_comes_with_its_images_attribute_rows(tiny_faces, tiny_train_config) -> None:
    config = attribute_classifier(tiny_faces).config
    model = Recording(config)
    train(model, tiny_faces, tiny_train_config.replace(epochs=1, batch_size=100), log=lambda _: None)
    rows = {}
    for split in ("train", "test"):
        for image, attributes in zip(getattr(tiny_faces, f"{split}_x"), getattr(tiny_faces, f"{split}_attributes")):
            rows[image.numpy().tobytes()] = attributes.float()
    checked = 0
    for x, y in model.seen:
        assert y.dtype == torch.float32 and y.shape == (len(x), len(tiny_faces.attribute_names))
        for image, row in zip((x * 255).round().to(torch.uint8), y):
            assert torch.equal(rows[image.numpy().tobytes()], row)
            checked += 1
    assert checked == len(tiny_faces.train_x) + len(tiny_faces.test_x)  # one epoch, then the test pass


def test_data_without_attributes_is_refused_in_one_line(tiny_shapes, tiny_train_config, capsys, tmp_path) -> None:
    with pytest.raises(DataError, match="shapes has no attributes.*faces, faces:N, celeba:PATH"):
        train(attribute_classifier(tiny_shapes), tiny_shapes, tiny_train_config, log=lambda _: None)
    fails(["train", "attribute-classifier", "--data", "shapes", "--epochs", "1", "--out", str(tmp_path / "run")],
          capsys, "no attributes", "faces")
    assert not (tmp_path / "run").exists()


def test_a_stratified_validation_split_stratifies_by_attribute_rows() -> None:
    rows = torch.tensor([[0, 1]] * 60 + [[1, 0]] * 30 + [[1, 1]] * 10).float()
    held = stratified_sample(rows, 10, seed=0)
    assert sorted(held.tolist()) == sorted(set(held.tolist()))
    kinds = [tuple(rows[i].tolist()) for i in held]
    assert (kinds.count((0.0, 1.0)), kinds.count((1.0, 0.0)), kinds.count((1.0, 1.0))) == (6, 3, 1)


def test_it_learns_easy_attributes(tiny_faces, tiny_train_config) -> None:
    """Eyeglasses (a dark ring around each eye) and Black_Hair are learnt in a few seconds on 256 faces, where
    always answering the majority is right 60% and 75% of the time."""
    torch.manual_seed(0)
    model = attribute_classifier(tiny_faces)
    train(model, tiny_faces, tiny_train_config.replace(epochs=12, batch_size=32, lr=3e-3), log=lambda _: None)
    predicted = model.eval().predict(tiny_faces.test_x.float() / 255)
    for attribute in ("Eyeglasses", "Black_Hair"):
        a = tiny_faces.attribute_names.index(attribute)
        assert (predicted[:, a] == tiny_faces.test_attributes[:, a]).float().mean() > 0.85, attribute


def test_blur_trains_on_images_blurred_by_a_std_drawn_per_image_and_leaves_evaluation_sharp() -> None:
    sharp = create_model("attribute-classifier", image_shape=(3, 16, 16), n_attributes=5, dropout=0.0, **TINY)
    blurred = create_model("attribute-classifier", image_shape=(3, 16, 16), n_attributes=5, dropout=0.0, blur=2.0,
                           **TINY)
    blurred.load_state_dict(sharp.state_dict())
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y = (torch.rand(6, 5, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    torch.manual_seed(3)
    stds = 2.0 * torch.rand(6)
    torch.manual_seed(3)
    trained_on = blurred.train().loss(x, y)["loss"]
    assert torch.allclose(trained_on, sharp.train().loss(gaussian_blur(x, stds, 2.0), y)["loss"], rtol=1e-5)
    assert abs(trained_on.item() - sharp.train().loss(x, y)["loss"].item()) > 1e-4
    blurred.load_state_dict(sharp.state_dict())  # the same running statistics: training passes moved them apart
    assert torch.equal(blurred.eval().loss(x, y)["loss"], sharp.eval().loss(x, y)["loss"])
