"""Dataset: train and test images as uint8 (N, C, H, W) with int64 labels and a little metadata."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.data.factors import GroundTruthFactors
from genlab.data.packed import PackedImages
from genlab.errors import DataError

MAX_CHANNELS = 4


def check_images(name: str, split: str, x: torch.Tensor) -> None:
    """A DataError unless x is uint8 (N, C, H, W) (a tensor or PackedImages); float images get the conversion."""
    if isinstance(x, PackedImages):  # binary uint8 (N, C, H, W), checked when it was built
        return
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name}: {split}_x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype.is_floating_point:
        raise DataError(f"{name}: {split}_x holds {x.dtype} values, but a Dataset holds uint8 pixels in 0..255; "
                        f"convert images in [0, 1] with (x * 255).round().to(torch.uint8)")
    if x.dtype != torch.uint8:
        raise DataError(f"{name}: {split}_x holds {x.dtype} values; a Dataset holds uint8 pixels in 0..255: "
                        f"convert with x.clamp(0, 255).to(torch.uint8)")
    if x.dim() != 4 or not 1 <= x.shape[1] <= MAX_CHANNELS:
        raise DataError(f"{name}: {split}_x has shape {tuple(x.shape)}; expected (N, C, H, W) with C in 1..4 "
                        f"(add a channel axis to grayscale images with x.unsqueeze(1))")


def check_labels(name: str, split: str, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> None:
    """A DataError unless y is an integer (N,) tensor with one class index in 0..n_classes-1 per image."""
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise DataError(f"{name}: {split}_y must be an integer tensor of class indices")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{name}: {split}_y has shape {tuple(y.shape)} for {x.shape[0]} images; "
                        f"expected one label per image, shape ({x.shape[0]},)")
    # one-off host reads at construction time, not on a hot path; empty tensors have no min
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DataError(f"{name}: {split}_y holds labels outside 0..{n_classes - 1} "
                        f"(there are {n_classes} class names)")


def check_attributes(name: str, split: str, x: torch.Tensor, attributes: torch.Tensor | None,
                     names: tuple[str, ...]) -> torch.Tensor | None:
    """attributes as bool (N, A), or a DataError unless they are 0/1 or bool with one row per image and A = len(names)."""
    if attributes is None:
        if names:
            raise DataError(f"{name}: attribute names {', '.join(names)} were given without {split}_attributes")
        return None
    if not names:
        raise DataError(f"{name}: {split}_attributes were given without attribute_names")
    if not isinstance(attributes, torch.Tensor) or attributes.dim() != 2 \
            or tuple(attributes.shape) != (x.shape[0], len(names)):
        shape = tuple(attributes.shape) if isinstance(attributes, torch.Tensor) else type(attributes).__name__
        raise DataError(f"{name}: {split}_attributes has shape {shape}; expected ({x.shape[0]}, {len(names)}): "
                        f"one row per image, one 0/1 column per attribute name")
    if attributes.dtype != torch.bool:
        if attributes.is_complex() or (attributes.numel() and not bool(((attributes == 0) | (attributes == 1)).all())):
            raise DataError(f"{name}: {split}_attributes must hold 0/1 (or bool) values")
        attributes = attributes.bool()
    return attributes


@dataclass(frozen=True)
class Dataset:
    """Train and test images as uint8 (N, C, H, W) on the CPU, int64 labels, class names.

    Built from float images it fails at once, saying how to convert them.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    factor_names: tuple[str, ...] = ()
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    source: str = ""
    factors: GroundTruthFactors | None = None  # names, levels, sample_factors, images_for (data/factors.py)
    note: str = ""  # one line on what loading did to the source (files skipped, crops, resizes); "" when nothing
    attribute_names: tuple[str, ...] = ()  # binary attributes per image, e.g. ("Smiling", "Eyeglasses")
    train_attributes: torch.Tensor | None = None  # bool (N, len(attribute_names)): image i has attribute a
    test_attributes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not self.classes:
            raise DataError(f"{self.name}: a Dataset needs at least one class name")
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            check_images(self.name, split, x)
            check_labels(self.name, split, x, y, len(self.classes))
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DataError(f"{self.name}: train images are {tuple(self.train_x.shape[1:])} but test images "
                            f"{tuple(self.test_x.shape[1:])}; both splits need one shape")
        if self.factors is not None and not isinstance(self.factors, GroundTruthFactors):
            raise DataError(f"{self.name}: factors must answer genlab.data.factors.GroundTruthFactors (names, sizes, "
                            f"values, sample_factors, images_for), got {type(self.factors).__name__}")
        for split, x, attributes in (("train", self.train_x, self.train_attributes),
                                     ("test", self.test_x, self.test_attributes)):
            object.__setattr__(self, f"{split}_attributes", check_attributes(self.name, split, x, attributes,
                                                                            self.attribute_names))
        object.__setattr__(self, "train_y", self.train_y.long())
        object.__setattr__(self, "test_y", self.test_y.long())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def attribute(self, attribute: str) -> tuple[torch.Tensor, torch.Tensor]:
        """bool (N_train,), bool (N_test,): which images have the named attribute, or a DataError listing the names."""
        if attribute not in self.attribute_names:
            have = (f"its attributes are {', '.join(self.attribute_names)}" if self.attribute_names else
                    "it has none; faces, celeba:PATH and folder: data with an attributes.csv have them")
            raise DataError(f"{self.name} has no attribute {attribute!r}; {have}")
        a = self.attribute_names.index(attribute)
        return self.train_attributes[:, a], self.test_attributes[:, a]

    def require_factors(self) -> GroundTruthFactors:
        """The ground-truth factors, or a DataError naming the datasets that have them."""
        if self.factors is None:
            raise DataError(f"{self.name} has no ground-truth factors; use a dataset that has them: sprites, "
                            f"sprites:N, dsprites:PATH, shapes, faces or faces:N")
        return self.factors

    def __repr__(self) -> str:
        channels, height, width = self.image_shape
        return (f"Dataset({self.name!r}: {len(self.train_x)} train / {len(self.test_x)} test images, "
                f"{channels}x{height}x{width} uint8, {len(self.classes)} classes)")
