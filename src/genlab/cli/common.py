"""Flags and helpers shared by the command modules."""
from __future__ import annotations

import argparse
from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.evaluation import model_test_images, run_dataset


def at_least(flag: str, value: float, least: float) -> None:
    """A one-line ConfigError unless value >= least: call before any loading, so bad flags fail at once."""
    if value < least:
        raise ConfigError(f"{flag} must be at least {least}, got {value}")


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto picks CUDA when present (default auto)")


def add_data_flags(parser: argparse.ArgumentParser, with_name: bool = True) -> None:
    if with_name:
        parser.add_argument("--data", default="fashion-mnist",
                            help="fashion-mnist, mnist, shapes or folder:PATH (default fashion-mnist)")
    parser.add_argument("--data-dir", help="folder searched first for dataset files (then $GENLAB_DATA, "
                                           "~/.cache/genlab, /usr/share/datasets)")
    if with_name:
        parser.add_argument("--image-size", type=int, help="resize images to this square size")
        parser.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")


def run_test_images(run_config: dict[str, Any], n: int, data_dir: str | None) -> torch.Tensor:
    """The first n test images of the run's dataset as the model is tested on them (binarized if trained so), uint8."""
    return model_test_images(run_config, run_dataset(run_config, data_dir))[:n]
