"""THE model table: every built-in model by name, as data, without torch.

A row names the class that builds the model ("vae.VAE": the class VAE of genlab/models/vae.py, whose config is
the class VAEConfig beside it), the config fields that differ from the config class's defaults, a one-line
description and the training settings the model prefers. A built-in family is its module and a row here;
`genlab.models.registry` turns the rows, and the models of installed packages, into MODELS.

The command line derives every model flag from the config classes before torch is loaded, so that every
`--help` answers at once. `declared_config` therefore reads a family's config class from its module's source
without running the module's torch code: the class is built from the module's torch-free statements alone.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from genlab.config import Config
from genlab.errors import ConfigError

FAMILIES = "genlab.models"  # the package of the built-in family modules
SET_FROM_DATA = ("image_shape", "n_classes", "n_attributes")  # model fields a dataset decides, never a file or a flag
TORCH_FREE = ("genlab.config", "genlab.errors", "genlab.sizes")  # genlab modules a config may use: no torch


class Row(NamedTuple):
    model: str                  # "module.Class" under genlab.models; its config is module.ClassConfig
    defaults: dict[str, Any]    # config fields that differ from the config class's defaults
    description: str
    train_defaults: Mapping[str, Any] = MappingProxyType({})  # TrainConfig fields the model prefers (flags win)

    @property
    def module(self) -> str:
        return f"{FAMILIES}.{self.model.rpartition('.')[0]}"

    @property
    def class_name(self) -> str:
        return self.model.rpartition(".")[2]

    @property
    def config_name(self) -> str:
        return self.class_name + "Config"

    @property
    def config_cls(self) -> type[Config]:
        """The config class as its module declares it, read without torch (for flags and help only: the model
        is built from the class of the imported module, see genlab.models.registry)."""
        return declared_config(self.module, self.config_name)


DCGAN_TRAINING = {"lr": 2e-4, "beta1": 0.5, "batch_size": 64}  # Radford et al. 2016
PROTOCOL_MLP = {"gated": True, "hidden": (300, 300), "latent_dim": 40}  # the VampPrior paper's MLP VAEs
# the disentanglement studies' 64x64 conv encoder and its mirror (Locatello et al. 2019, Table 1; Burgess et al. 2018)
CONV64 = {"arch": "conv", "conv_channels": (32, 32, 64, 64), "kernel_size": 4, "conv_padding": "half",
          "conv_dense": (256,), "conv_activation": "relu", "latent_dim": 10}
STUDY_TRAINING = {"lr": 1e-4, "batch_size": 64}  # disentanglement_lib's unsupervised study: Adam 1e-4, batch 64

TABLE: Mapping[str, Row] = MappingProxyType({
    "vae": Row("vae.VAE", {}, "MLP VAE 784-400-20, Bernoulli decoder (the standard tutorial model)"),
    "conv-vae": Row("vae.VAE", {"arch": "conv"},
                    "conv VAE: two 5x5 stride-2 convs (16, 32), 20-d latent, transposed-conv decoder"),
    "vae-bn": Row("vae.VAE", {"hidden": (512, 512, 512), "batch_norm": True, "latent_dim": 2},
                  "MLP VAE, three 512-unit layers with batch norm + ReLU, 2-d latent (for manifold plots)"),
    "conv-vae-4x4": Row("vae.VAE", {"arch": "conv", "conv_channels": (32, 64), "kernel_size": 4,
                                    "conv_padding": "valid"},
                        "lecture conv VAE: 4x4 stride-2 convs (32, 64) to 64x5x5, 20-d latent, "
                        "transposed convs (5x5, 4x4) back; batch 64", {"batch_size": 64}),
    "beta-vae": Row("vae.VAE", {"beta": 4.0},
                    "beta-VAE (Higgins et al. 2017): the MLP VAE with KL weight beta = 4"),
    "iwae": Row("vae.VAE", {"k": 5},
                "importance-weighted autoencoder (Burda et al. 2016): the MLP VAE trained on the k = 5 bound"),
    "vamp-vae": Row("vae.VAE", {**PROTOCOL_MLP, "prior": "vamp"},
                    "VampPrior VAE (Tomczak & Welling 2018): gated MLP 784-300-300-40, p(z) a mixture of "
                    "the posteriors at 500 learned pseudo-inputs"),
    "hvae": Row("hvae.HVAE", {},
                "two-level hierarchical VAE (Tomczak & Welling 2018): gated 300-unit MLPs, z1 and z2 of 40 "
                "dims; --prior vamp for a VampPrior on z2"),
    "ae": Row("autoencoder.AE", {}, "MLP autoencoder 784-128-64-12-3 with a mirrored decoder, MSE loss"),
    "conv-ae": Row("autoencoder.AE", {"arch": "conv", "latent_dim": 16},
                   "conv autoencoder: two 5x5 stride-2 convs (16, 32) to a 16-d code, MSE loss"),
    "deep-ae": Row("autoencoder.AE", {"hidden": (512, 256, 128, 64), "latent_dim": 32},
                   "deep MLP autoencoder 784-512-256-128-64-32, five layers each side, MSE loss"),
    "denoising-ae": Row("autoencoder.AE", {"hidden": (256, 128), "latent_dim": 32, "corruption": "gaussian",
                                           "corruption_level": 0.3},
                        "denoising autoencoder 784-256-128-32: rebuilds clean images from inputs with "
                        "Gaussian noise (std 0.3)"),
    "contractive-ae": Row("autoencoder.AE", {"hidden": (), "latent_dim": 64, "code_activation": "sigmoid",
                                             "contractive": 0.1},
                          "contractive autoencoder (Rifai et al. 2011): one sigmoid layer of 64 units, "
                          "lambda ||dh/dx||^2 = 0.1"),
    "beta-vae-conv64": Row("vae.VAE", {**CONV64, "beta": 4.0},
                           "beta-VAE (Higgins et al. 2017) on the disentanglement studies' 64x64 conv net: 4x4 "
                           "stride-2 convs (32, 32, 64, 64), 256 units, 10-d latent, beta = 4", STUDY_TRAINING),
    "annealed-vae": Row("disentangling.DisentanglingVAE", {**CONV64, "objective": "annealed"},
                        "AnnealedVAE (Burgess et al. 2018): rec + gamma |KL - C|, C rising 0 -> 25 nats over 100k "
                        "steps, gamma 1000; conv64 net", STUDY_TRAINING),
    "beta-tcvae": Row("disentangling.DisentanglingVAE", {**CONV64, "objective": "beta-tc", "beta": 6.0},
                      "beta-TCVAE (Chen et al. 2018): rec + KL + (beta - 1) TC, minibatch TC estimate, beta 6; "
                      "conv64 net", STUDY_TRAINING),
    "dip-vae-i": Row("disentangling.DisentanglingVAE", {**CONV64, "objective": "dip-i", "lambda_od": 10.0,
                                                        "lambda_d": 100.0},
                     "DIP-VAE-I (Kumar et al. 2018): rec + KL + penalty on Cov[mu] (lambda_od 10, lambda_d 100); "
                     "conv64 net", STUDY_TRAINING),
    "dip-vae-ii": Row("disentangling.DisentanglingVAE", {**CONV64, "objective": "dip-ii", "lambda_od": 10.0,
                                                         "lambda_d": 10.0},
                      "DIP-VAE-II (Kumar et al. 2018): rec + KL + penalty on Cov[z] (lambda_od = lambda_d = 10); "
                      "conv64 net", STUDY_TRAINING),
    "factor-vae": Row("disentangling.FactorVAE", CONV64,
                      "FactorVAE (Kim & Mnih 2018): rec + KL + gamma TC, TC from a 6x1000 discriminator on permuted "
                      "codes with its own Adam, gamma 40; conv64 net", STUDY_TRAINING),
    "conv-vae-64": Row("vae.VAE", {**CONV64, "latent_dim": 32, "likelihood": "gaussian", "gaussian_std": 0.1},
                       "conv VAE for 64x64 RGB images (faces, celeba:PATH): 4x4 stride-2 convs (32, 32, 64, 64), "
                       "256 units, 32-d latent, transposed convs back; Gaussian decoder, std 0.1",
                       {"batch_size": 64}),
    "dcgan": Row("dcgan.DCGAN", {}, "DCGAN (Radford et al. 2016): z of 100 dims, transposed-conv generator, conv "
                 "discriminator; 28, 32 or 64 pixels", DCGAN_TRAINING),
    "classifier": Row("classifier.Classifier", {},
                      "small CNN classifier (two conv blocks, 128-d features): for metrics and inversion"),
    "attribute-classifier": Row("classifier.Classifier", {"targets": "attributes"},
                                "the small CNN with one sigmoid output per binary attribute of the data (faces' "
                                "Smiling, Eyeglasses, ...): binary cross-entropy summed over attributes"),
})


# ---------------------------------------------------------------- a config class read without torch


def declared_config(module: str, name: str) -> type[Config]:
    """The config class `name` of the family module `module`, built from the module's torch-free statements."""
    namespace = declarations(module)
    config = namespace.get(name)
    if not (isinstance(config, type) and issubclass(config, Config)):
        raise ConfigError(f"{module} declares no config class {name} (a frozen dataclass deriving from "
                          f"genlab.Config) beside its model class")
    return config


@functools.cache
def declarations(module: str) -> dict[str, Any]:
    """The names a family module's torch-free statements define, run without the rest of the module.

    Kept: imports of the standard library and of TORCH_FREE, config classes of other families, constants
    written as literals, undecorated functions (their bodies run only when called), and every class deriving
    from Config. Everything else (torch, the networks) is left out.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the model table names {module}, which is not a module of genlab")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    # a module object of its own, which dataclasses and typing look up by the classes' __module__
    declared = types.ModuleType(f"{module}[declared]", f"the torch-free declarations of {module}")
    sys.modules[declared.__name__] = declared
    namespace = declared.__dict__
    configs = {"Config"}
    kept = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(FAMILIES + "."):
            configs |= bind_family_configs(node, namespace)
        elif keeps(node, configs):
            kept.append(node)
            if isinstance(node, ast.ClassDef):
                configs.add(node.name)
    try:
        exec(compile(ast.Module(kept, type_ignores=[]), spec.origin, "exec"), namespace)
    except Exception as err:  # a declaration that needs more than torch-free names
        raise ConfigError(f"the config of {module} could not be read without torch ({type(err).__name__}: {err}); "
                          f"declare its fields with literal option() arguments and torch-free helpers") from None
    return namespace


def keeps(node: ast.stmt, configs: set[str]) -> bool:
    """Whether a module-level statement belongs to the torch-free declarations."""
    if isinstance(node, ast.ImportFrom):
        return node.module == "__future__" or torch_free(node.module or "")
    if isinstance(node, ast.Import):
        return all(torch_free(alias.name) for alias in node.names)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return node.value is not None and is_literal(node.value)
    if isinstance(node, ast.FunctionDef):
        return not node.decorator_list and all(is_literal(d) for d in node.args.defaults + node.args.kw_defaults
                                               if d is not None)
    if isinstance(node, ast.ClassDef):
        return any(isinstance(base, ast.Name) and base.id in configs for base in node.bases)
    return False


def torch_free(module: str) -> bool:
    return module in TORCH_FREE or module.split(".")[0] in sys.stdlib_module_names


def is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
    return True


def bind_family_configs(node: ast.ImportFrom, namespace: dict[str, Any]) -> set[str]:
    """`from genlab.models.vae import VAEConfig` in a family module: the other family's declared config."""
    bound = set()
    for alias in node.names:
        value = declarations(node.module).get(alias.name)
        if isinstance(value, type) and issubclass(value, Config):
            namespace[alias.asname or alias.name] = value
            bound.add(alias.asname or alias.name)
    return bound
