"""VGG (Simonyan & Zisserman 2014) with torchvision's module names, so that its ImageNet checkpoints load strictly."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# VGG configurations D (16 layers) and E (19 layers): conv channels, "M" a 2x2 max pool
VGG_LAYOUTS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


def vgg_features(layout: Sequence[int | str], in_channels: int = 3) -> nn.Sequential:
    """3x3 conv + ReLU per number, 2x2 max pool per "M": torchvision's `features` indices and names."""
    layers: list[nn.Module] = []
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), 3, padding=1), nn.ReLU()]
            in_channels = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG with torchvision's module names (features, avgpool, classifier): its checkpoints load strictly."""

    def __init__(self, layout: Sequence[int | str], n_classes: int | None = 1000) -> None:
        super().__init__()
        self.features = vgg_features(layout)
        if n_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(4096, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) normalised -> logits (N, n_classes), or the last pool's features without a head."""
        x = self.features(x)
        if not hasattr(self, "classifier"):
            return x
        return self.classifier(torch.flatten(self.avgpool(x), 1))
