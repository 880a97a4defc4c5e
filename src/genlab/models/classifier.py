"""A small CNN classifier: the feature extractor for Frechet distance and probes, the target for inversion; with
targets "attributes", one sigmoid output per binary attribute of the data (Smiling, Eyeglasses, ...)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.config import Config, option, require
from genlab.nn import gaussian_blur


@dataclass(frozen=True)
class ClassifierConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width), set from the data",
                                             low=1, high=2048)
    targets: str = option("classes", "what it predicts: one class per image (softmax over n_classes), or each of the "
                                     "data's binary attributes (one sigmoid per attribute)",
                          choices=("classes", "attributes"))
    n_classes: int = option(10, "number of classes, set from the data", low=2, high=100000,
                            when={"targets": ("classes",)})
    n_attributes: int = option(40, "number of attributes, set from the data", low=1, high=100000,
                               when={"targets": ("attributes",)})
    conv_channels: tuple[int, ...] = option((32, 64), "channels of the conv blocks (3x3 conv, batch norm, ReLU, "
                                                      "2x2 max pool)", low=1, high=4096)
    feature_dim: int = option(128, "size of the penultimate layer: the features metrics use",
                               low=1, high=16384)
    dropout: float = option(0.3, "dropout before the last layer, while training", low=0.0, high=0.99)
    blur: float = option(0.0, "while training, blur each image by a Gaussian of std drawn uniformly from [0, blur] "
                              "pixels (0: off): the classifier then reads a blurry model output by what it shows, "
                              "not by how sharp it is", low=0.0, high=16.0)

    def __post_init__(self) -> None:
        require(len(self.conv_channels) >= 1, "channels needs at least one conv block")
        side = min(self.image_shape[1:]) // 2 ** len(self.conv_channels)
        require(side >= 1, f"{len(self.conv_channels)} pooling blocks shrink {self.image_shape[1]}x{self.image_shape[2]} "
                           f"images to nothing; use fewer --conv-channels or a larger --image-size")


class Classifier(nn.Module):
    """Image in [0, 1] -> conv blocks -> features (N, feature_dim) -> logits (N, n_classes), or (N, n_attributes)
    with targets "attributes": then loss(x, y) takes y as float (N, n_attributes) 0/1 rows, the data's attributes."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        blocks: list[nn.Module] = []
        for n_in, n_out in zip((c.image_shape[0], *c.conv_channels), c.conv_channels):
            blocks += [nn.Conv2d(n_in, n_out, 3, padding=1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(),
                       nn.MaxPool2d(2)]
        shrink = 2 ** len(c.conv_channels)
        flat = c.conv_channels[-1] * (c.image_shape[1] // shrink) * (c.image_shape[2] // shrink)
        self.body = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(flat, c.feature_dim), nn.ReLU())
        outputs = c.n_attributes if c.targets == "attributes" else c.n_classes
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.feature_dim, outputs))

    @property
    def targets(self) -> str:
        """"classes" or "attributes": which labels the trainer feeds loss(x, y)."""
        return self.config.targets

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (N, feature_dim): the embedding for Frechet distance and probes."""
        return self.body(x)

    def logits(self, x: Tensor) -> Tensor:
        """Unnormalised class scores (N, n_classes), or attribute log-odds (N, n_attributes)."""
        return self.head(self.features(x))

    def loss(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Cross-entropy in nats per image, and accuracy (fraction correct), batch means; in training mode with
        `blur` > 0, of the images blurred (a std per image) as the config says. With attribute targets
        y (N, A) in {0, 1}: binary cross-entropy summed over the A attributes (nats per image), and accuracy the
        fraction of the N * A attribute predictions that are right."""
        if self.training and self.config.blur > 0:
            x = gaussian_blur(x, self.config.blur * torch.rand(x.shape[0], device=x.device), self.config.blur)
        logits = self.logits(x)
        if self.config.targets == "attributes":
            # -sum_a [y_a log sigmoid(l_a) + (1 - y_a) log(1 - sigmoid(l_a))], averaged over the batch
            loss = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / x.shape[0]
            accuracy = ((logits > 0) == (y > 0.5)).to(logits.dtype).mean()
            return {"loss": loss, "accuracy": accuracy}
        accuracy = (logits.argmax(1) == y).to(logits.dtype).mean()
        return {"loss": F.cross_entropy(logits, y), "accuracy": accuracy}

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Most likely class per image, (N,) int64; with attribute targets, bool (N, n_attributes): attribute a
        is predicted present where its probability passes 1/2."""
        logits = self.logits(x)
        return logits > 0 if self.config.targets == "attributes" else logits.argmax(1)
