"""Attribute edits judged: an attribute classifier's predictions, and an attribute vector (latent.attribute_vector)
added to test images' codes, judged by that classifier and, on `faces`, by the ground-truth renderer.

The fair comparison for an edit is the same face decoded without it: decode(z + s v) against decode(z), so that
what the autoencoder loses in reconstruction is not charged to the vector. Pixel distances are the mean absolute
difference over pixels and channels, in [0, 1] units, averaged over images.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from genlab import latent
from genlab.data.batches import iter_ordered, to_unit_float
from genlab.data.dataset import Dataset
from genlab.data.faces import FACTOR_NAMES, HAIR_COLOURS, render
from genlab.errors import ConfigError, RunError
from genlab.models.contract import AutoEncoder, Classifier
from genlab.nn import module_device
from genlab.runs.store import Run

PREDICT_BATCH = 500  # images per classifier or autoencoder pass: bounds memory on 64x64 RGB faces
Classify = Callable[[Tensor], Tensor]  # images (N, C, H, W) in [0, 1] -> bool (N, A) attribute predictions


# ---------------------------------------------------------------- predicting attributes


def attribute_classifier(run: Run) -> nn.Module:
    """The model of an attribute-classifier run, or a RunError saying how to train one."""
    model = run.model
    if not (isinstance(model, Classifier) and getattr(model, "targets", "classes") == "attributes"):
        raise RunError(f"{run.path} holds a {run.record.model} run, which does not predict attributes; train one "
                       f"with `genlab train attribute-classifier --data faces`")
    return model


def predict_attributes(classifier: Run | nn.Module, x: Tensor, batch_size: int = PREDICT_BATCH) -> Tensor:
    """bool (N, A) on the CPU: which attributes an attribute classifier (a run or its model) sees in images x
    (N, C, H, W), uint8 or float in [0, 1]; an attribute is present where its probability passes 1/2."""
    model = attribute_classifier(classifier) if isinstance(classifier, Run) else classifier
    was_training = model.training
    model.eval()
    with torch.no_grad():
        found = [model.logits(batch) > 0 for batch in iter_ordered(x, batch_size, module_device(model))]
    model.train(was_training)
    return torch.cat(found).cpu()


# ---------------------------------------------------------------- the ground truth of `faces`


HAIR = tuple(f"{colour.capitalize()}_Hair" for colour in HAIR_COLOURS)
REDRAWN = ("Smiling", "Eyeglasses", *HAIR)  # the faces attributes rendered_with switches on


def rendered_with(factors: Tensor, attribute: str) -> Tensor:
    """uint8 (N, 3, 64, 64): faces of these factor values (N, K) redrawn with the attribute switched on and
    nothing else changed. Smiling keeps the mouth's curvature magnitude and turns it upward (c -> |c|)."""
    values = factors.detach().cpu().numpy().astype(np.float64)
    column = {name: k for k, name in enumerate(FACTOR_NAMES)}
    if attribute == "Smiling":
        values[:, column["mouth_curvature"]] = np.abs(values[:, column["mouth_curvature"]])
    elif attribute == "Eyeglasses":
        values[:, column["eyeglasses"]] = 1.0
    elif attribute in HAIR:
        values[:, column["hair_colour"]] = float(HAIR.index(attribute))
    else:
        raise ConfigError(f"faces redraws a face with {', '.join(REDRAWN)} switched on, not {attribute!r}")
    return render(values)


def renders_faces(data: Dataset) -> bool:
    """Whether the dataset's test images are faces that faces.render redraws from their stored factors."""
    return data.name.split(":")[0] == "faces" and data.test_factors is not None \
        and tuple(data.factor_names) == FACTOR_NAMES


# ---------------------------------------------------------------- an edit judged


@dataclass(frozen=True)
class EditScores:
    """How one vector, added at one strength to n images' codes, did: shares in [0, 1], distances in [0, 1] pixel
    units (mean |difference| over pixels and channels), None without a ground-truth rendering."""

    n: int
    called_original: float        # share the classifier calls the attribute on the original images
    called_reconstruction: float  # ... on decode(z): the same faces through the autoencoder, unedited
    called_edited: float          # ... on decode(z + s v)
    others_kept: float            # share whose every other attribute is predicted on the edit as on decode(z)
    others_reconstructed: float   # share whose every other attribute is predicted on decode(z) as on the original
    distance_original: float | None = None        # original image to the ground-truth edited rendering
    distance_reconstruction: float | None = None  # decode(z) to it
    distance_edited: float | None = None          # decode(z + s v) to it
    region_original: float | None = None          # the same, over the pixels the ground-truth edit changes
    region_reconstruction: float | None = None
    region_edited: float | None = None


def judge_edit(model: nn.Module, classify: Classify, x: Tensor, vector: Tensor, attribute: int,
               truth: Tensor | None = None, strength: float = 1.0, batch_size: int = PREDICT_BATCH) -> EditScores:
    """Add strength * vector (latent_dim,) to the codes (posterior means) of images x (N, C, H, W), uint8 or float
    in [0, 1], decode, and judge: `classify` on originals, reconstructions and edits (attribute = its column), and
    with `truth` (N, C, H, W), the images as they should look edited, the pixel distances to it: over the whole
    image, and over the pixels where truth and original differ (region_*)."""
    sums: dict[str, float] = {}

    def add(name: str, value: Tensor) -> None:
        sums[name] = sums.get(name, 0.0) + float(value.sum())  # one host read per batch per figure
    for start, batch in zip(range(0, len(x), batch_size), iter_ordered(x, batch_size)):
        codes = latent.encode_means(model, batch, batch_size)
        images = {"original": batch.cpu(), "reconstruction": latent.decode_images(model, codes).cpu(),
                  "edited": latent.decode_images(model, codes + strength * vector.to(codes.device)).cpu()}
        called = {name: classify(image).cpu() for name, image in images.items()}
        for name, found in called.items():
            add(f"called_{name}", found[:, attribute])
        others = torch.arange(called["edited"].shape[1]) != attribute
        add("others_kept", (called["edited"][:, others] == called["reconstruction"][:, others]).all(1))
        add("others_reconstructed", (called["reconstruction"][:, others] == called["original"][:, others]).all(1))
        if truth is not None:
            target = truth[start:start + batch_size]
            target = to_unit_float(target) if target.dtype == torch.uint8 else target.float()
            # the pixels the edit should change: where the original and its redrawing differ (by a level or more)
            changed = ((target - images["original"]).abs().amax(1, keepdim=True) > 0.5 / 255).float()
            for name, image in images.items():
                difference = (image - target).abs()
                add(f"distance_{name}", difference.mean((1, 2, 3)))
                add(f"region_{name}", (difference * changed).sum((1, 2, 3))
                    / (changed.sum((1, 2, 3)) * image.shape[1]).clamp_min(1))
    return EditScores(n=len(x), **{name: value / max(len(x), 1) for name, value in sums.items()})


def same_norm_direction(vector: Tensor, seed: int = 0) -> Tensor:
    """A random direction with the norm of `vector` (D,): the plain reference an attribute vector is judged against."""
    direction = torch.randn(vector.shape, generator=torch.Generator().manual_seed(seed))
    return direction * (vector.norm() / direction.norm())


# ---------------------------------------------------------------- the measurement on two runs


@dataclass(frozen=True)
class VectorMeasurement:
    """An attribute vector beside a random vector of its norm, each judged on the same test images."""

    attribute: str
    strength: float
    vector_norm: float
    train_groups: tuple[int, int]  # training images averaged without and with the attribute
    vector: EditScores
    random: EditScores
    truth: str  # how the ground truth was drawn, "" without one


def check_pair(model_run: Run, classifier: nn.Module, classifier_run: Run, data: Dataset) -> None:
    """The classifier predicts the attributes of the other run's data, on images of its shape."""
    families = {run.record.data.spec.split(":")[0] for run in (model_run, classifier_run)}
    shapes = {tuple(classifier.config.image_shape), tuple(data.image_shape)}
    if len(families) > 1 or len(shapes) > 1 or classifier.config.n_attributes != len(data.attribute_names):
        raise RunError(f"the classifier in {classifier_run.path} was trained on {classifier_run.record.data.spec} "
                       f"but {model_run.path} on {model_run.record.data.spec}: train both on the same data")


def measure_attribute_vector(model_run: Run, classifier_run: Run, attribute: str = "Smiling", strength: float = 1.0,
                             n: int | None = None, seed: int = 0, data_dir: str | None = None) -> VectorMeasurement:
    """The attribute vector of model_run's training images (mean code with `attribute` minus without), added at
    `strength` to the codes of the first n test images without it (all when n is None), judged by the attribute
    classifier of classifier_run and, on faces, against those faces redrawn with the attribute; beside it a random
    vector of the same norm (from `seed`)."""
    if not isinstance(model_run.model, AutoEncoder):
        raise RunError(f"{model_run.path} holds a {model_run.record.model} run, which has no encoder to place faces "
                       f"in its latent space; use a VAE or autoencoder run")
    classifier = attribute_classifier(classifier_run)
    data = model_run.dataset(data_dir)
    check_pair(model_run, classifier, classifier_run, data)
    model = model_run.model
    from_indices, to_indices, shown = latent.named_attribute_indices(data, attribute, n or len(data.test_x))
    train_x = model_run.record.model_images(data.train_x)
    vector = latent.attribute_vector(model, *(to_unit_float(train_x[i]) for i in (from_indices, to_indices)))
    x = model_run.test_images(data)[shown]
    truth, how = None, ""
    if renders_faces(data) and attribute in REDRAWN:
        truth = rendered_with(data.test_factors[shown], attribute)
        how = f"the same faces redrawn by faces.render with {attribute} on" + (
            " (mouth curvature c -> |c|)" if attribute == "Smiling" else "")

    def classify(images: Tensor) -> Tensor:
        return predict_attributes(classifier, images)
    column = data.attribute_names.index(attribute)
    scores = [judge_edit(model, classify, x, v, column, truth, strength)
              for v in (vector, same_norm_direction(vector, seed))]
    return VectorMeasurement(attribute, strength, float(vector.norm()), (len(from_indices), len(to_indices)),
                             *scores, how)


# ---------------------------------------------------------------- a generator's samples read by the classifier


CONFIDENT = 0.9  # a prediction is confident when its probability is above 0.9 or below 0.1


@dataclass(frozen=True)
class AttributeReading:
    """What an attribute classifier sees in a set of images: per attribute, the share it calls present and the share
    of its predictions that are confident (probability beyond 0.9 either way)."""

    n: int
    present: Tensor    # (A,) shares in [0, 1]
    confident: Tensor  # (A,)


def read_attributes(classifier: nn.Module, x: Tensor, batch_size: int = PREDICT_BATCH) -> AttributeReading:
    """The classifier's reading of images x (N, C, H, W), uint8 or float in [0, 1]."""
    was_training = classifier.training
    classifier.eval()
    present, confident = 0.0, 0.0
    with torch.no_grad():
        for batch in iter_ordered(x, batch_size, module_device(classifier)):
            p = torch.sigmoid(classifier.logits(batch).float())
            present = present + (p > 0.5).float().sum(0).cpu()
            confident = confident + ((p > CONFIDENT) | (p < 1 - CONFIDENT)).float().sum(0).cpu()
    classifier.train(was_training)
    return AttributeReading(len(x), present / max(len(x), 1), confident / max(len(x), 1))


def sample_reading(generator_run: Run, classifier_run: Run, n: int = 1000, seed: int = 0,
                   data_dir: str | None = None) -> tuple[AttributeReading, AttributeReading, Tensor, list[str]]:
    """The classifier's reading of n samples of a generator run (prior codes from `seed`) beside its reading of the
    first n test images of the data, and those images' true attribute shares (A,); with the attribute names."""
    classifier = attribute_classifier(classifier_run)
    data = generator_run.dataset(data_dir)
    check_pair(generator_run, classifier, classifier_run, data)
    model = generator_run.model
    codes = latent.seeded_codes(model, n, seed)
    samples = torch.cat([latent.decode_images(model, chunk).cpu() for chunk in codes.split(PREDICT_BATCH)])
    truth = data.test_attributes[:n].float().mean(0)
    return (read_attributes(classifier, samples), read_attributes(classifier, data.test_x[:n]), truth,
            list(data.attribute_names))
