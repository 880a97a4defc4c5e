"""The command table: each command's module and one-line help, read without importing any command module.

`genlab --help` lists the commands from this table alone; a command's module (and torch with it) is imported
only when that command is named.
"""
from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    module: str  # under genlab.cli; its register(commands) adds the command's parser
    help: str


COMMANDS = {
    "train": Command("runs", "train a model and write a run directory"),
    "sample": Command("runs", "draw samples from a trained VAE or GAN"),
    "reconstruct": Command("runs", "reconstruct test images with a trained model"),
    "report": Command("runs", "(re)write a run's HTML report"),
    "models": Command("runs", "list the registered models"),
    "data": Command("data", "list or fetch datasets"),
    "convarith": Command("convarith", "convolution arithmetic: sizes, the matrix C, pictures"),
    "invert": Command("invert", "optimise pixels through a CNN: class visualization, DeepDream, style"),
    "explore": Command("explore", "pictures of a run's latent space (manifold, traverse, ...)"),
    "evaluate": Command("evaluate", "measure a run: -ELBO, IWAE NLL, Fréchet distance, probes"),
    "serve": Command("serve", "explore a trained run's latent space in the browser"),
}
