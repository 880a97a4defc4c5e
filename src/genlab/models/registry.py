"""Every model genlab knows, in one dict: the CLI, run loading and the contract tests enumerate it.

MODELS holds the rows of the model table (genlab.models.table) with their classes imported, then the models
that installed packages (entry points) and `register_model` add.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from genlab.config import SUPPORTED_KINDS, Config, field_types, kind_name, supported_kind
from genlab.errors import ConfigError, GenlabError, did_you_mean
from genlab.models.table import TABLE, Row
from genlab.plugins import MODELS_GROUP, load_plugins, one_line


class ModelSpec(NamedTuple):
    """A model as MODELS holds it: what a `genlab.models` entry point names, and what register_model builds."""

    cls: type[nn.Module]
    config_cls: type[Config]
    defaults: dict[str, Any]    # config fields that differ from the config class's defaults
    description: str
    train_defaults: Mapping[str, Any] = MappingProxyType({})  # TrainConfig fields the model prefers (flags win)


def built_in(row: Row) -> ModelSpec:
    """A row of the model table with its class and config class imported from the family module."""
    module = importlib.import_module(row.module)
    return ModelSpec(getattr(module, row.class_name), getattr(module, row.config_name), dict(row.defaults),
                     row.description, row.train_defaults)


MODELS: dict[str, ModelSpec] = {name: built_in(row) for name, row in TABLE.items()}


NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
BUILT_IN = tuple(MODELS)
MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32 weights: a config past this is a typo, not a model


def register_model(name: str, cls: type[nn.Module], config_cls: type[Config], description: str = "",
                   defaults: dict[str, Any] | None = None, train_defaults: Mapping[str, Any] | None = None,
                   replace: bool = False) -> ModelSpec:
    """Add a model to MODELS: every command (train, sample, explore, evaluate, serve, report) then knows it.

    cls(config) builds it from a frozen dataclass `config_cls` (a `genlab.config.Config`).
    """
    spec = ModelSpec(cls, config_cls, dict(defaults or {}), description or f"{cls.__name__} (registered)",
                     MappingProxyType(dict(train_defaults or {})))
    check_spec(name, spec, replace)
    MODELS[name] = spec
    return spec


def check_spec(name: str, spec: ModelSpec, replace: bool = False) -> None:
    """A ConfigError unless `spec` can be registered as `name`: its classes, every field of its config (a
    default, a kind genlab checks and derives a flag from) and its defaults, built through the config's rules."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"model name {name!r} must be lowercase letters, digits, '.', '_' or '-' (at most 64)")
    if name in BUILT_IN or (name in MODELS and not replace):
        raise ConfigError(f"a model named {name!r} is already registered; choose another name")
    if not (isinstance(spec.cls, type) and issubclass(spec.cls, nn.Module)):
        raise ConfigError(f"model {name!r}: {spec.cls!r} is not a torch.nn.Module subclass")
    if not (isinstance(spec.config_cls, type) and issubclass(spec.config_cls, Config)
            and dataclasses.is_dataclass(spec.config_cls)):
        raise ConfigError(f"model {name!r}: its config class must be a frozen dataclass deriving from "
                          f"genlab.config.Config")
    check_config_fields(name, spec.config_cls)
    try:  # the defaults must build; a rule's own exception becomes a ConfigError in Config itself
        spec.config_cls.from_dict({**spec.config_cls().to_dict(), **spec.defaults})
    except ConfigError as err:
        raise ConfigError(f"model {name!r}: its default config is refused: {err}") from None
    except Exception as err:  # e.g. a default the dataclass machinery itself refuses
        raise ConfigError(f"model {name!r}: its default config could not be built ({one_line(err)})") from err


def check_config_fields(name: str, config_cls: type[Config]) -> None:
    """Every field of a model's config has a default and a kind genlab can check and make a flag of."""
    where = f"{config_cls.__module__}.{config_cls.__qualname__}"
    try:
        kinds = field_types(config_cls)
    except Exception as err:  # get_type_hints: a name only imported under TYPE_CHECKING, a typo
        raise ConfigError(f"model {name!r}: the field annotations of {where} cannot be resolved "
                          f"({one_line(err)})") from err
    for field in dataclasses.fields(config_cls):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"model {name!r}: field {field.name} of {where} has no default; declare it as "
                              f"`{field.name}: ... = genlab.option(default, help)`")
        if not supported_kind(kinds[field.name]):
            raise ConfigError(f"model {name!r}: field {field.name} of {where} is annotated "
                              f"{kind_name(kinds[field.name])}; a config field is {SUPPORTED_KINDS}")


@functools.cache
def load_entry_points() -> Mapping[str, str]:
    """Register the models of installed packages, once: each `genlab.models` entry point names a ModelSpec.

    Returns the entry points refused (name -> one line saying which and why); every other model works.
    """
    refused = {}
    for plugin in load_plugins(MODELS_GROUP):
        if plugin.name in MODELS and MODELS[plugin.name] is plugin.loaded:
            continue  # registered already, e.g. by register_model
        problem = plugin.problem
        if problem is None:
            try:
                if not isinstance(plugin.loaded, ModelSpec):
                    raise ConfigError(f"it names {' '.join(repr(plugin.loaded).split())[:100]}, not a "
                                      f"genlab.ModelSpec(cls, config_cls, defaults, description)")
                check_spec(plugin.name, plugin.loaded)
            except ConfigError as err:
                problem = str(err)
        if problem is None:
            MODELS[plugin.name] = plugin.loaded
        else:
            refused[plugin.name] = plugin.refusal(problem)
    return MappingProxyType(refused)


def model_names() -> list[str]:
    """Every registered model, the installed packages' included."""
    load_entry_points()
    return list(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a ConfigError listing the valid names."""
    refused = load_entry_points() if name not in MODELS else {}
    if name in refused:
        raise ConfigError(refused[name])
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}{did_you_mean(name, MODELS)}; choose one of {', '.join(MODELS)} "
                          f"(see `genlab models`)")
    return MODELS[name]


def spec_name(model: nn.Module) -> str | None:
    """The registry name of a model built by genlab (or of the first entry whose classes match), else None."""
    name = getattr(model, "model_name", None)
    if name in MODELS and isinstance(model, MODELS[name].cls):
        return name
    config = getattr(model, "config", None)
    for candidate, spec in MODELS.items():
        if type(model) is spec.cls and type(config) is spec.config_cls:
            return candidate
    return None


def make_config(name: str, **overrides: Any) -> Config:
    """The model's config: class defaults, then the registry's, then `overrides`."""
    spec = model_spec(name)
    return spec.config_cls.from_dict({**spec.config_cls().to_dict(), **spec.defaults, **overrides})


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model, e.g. create_model("vae", latent_dim=2)."""
    return build_model(name, make_config(name, **overrides))


def data_fields(name: str, image_shape: tuple[int, ...], n_classes: int, n_attributes: int = 0,
                options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config fields a dataset decides that `name` has: image shape; class count for classifiers, or the
    attribute count for one whose `targets` (its row's, or `options`') are "attributes" (its classes unused)."""
    spec = model_spec(name)
    fields = spec.config_cls.field_names()
    given: dict[str, Any] = {"image_shape": tuple(image_shape)}
    targets = {**spec.defaults, **(options or {})}.get("targets", getattr(spec.config_cls, "targets", None))
    if targets != "attributes":
        given["n_classes"] = n_classes
    elif n_attributes > 0:  # without attributes the trainer says which data have them
        given["n_attributes"] = n_attributes
    return {k: v for k, v in given.items() if k in fields}


class SkipInit(TorchFunctionMode):
    """Turns the in-place initialisers of torch.nn.init into no-ops: nothing to fill on the meta device, and
    some (normal_) would import PyTorch's decompositions there, seconds of start-up for a count."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", "") == "torch.nn.init" and func.__name__.endswith("_"):
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **kwargs)


def count_parameters(name: str, config: Config) -> int:
    """Parameters the model would have, counted on the meta device (no memory is allocated)."""
    with SkipInit(), torch.device("meta"):
        return sum(p.numel() for p in construct(name, config).parameters())


def construct(name: str, config: Config) -> nn.Module:
    """model_spec(name).cls(config); a plugin's own exception while building becomes one line naming it."""
    spec = model_spec(name)
    if name in BUILT_IN:
        return spec.cls(config)  # genlab's own models: a failure here is a bug, with its traceback
    try:
        return spec.cls(config)
    except GenlabError:
        raise
    except Exception as err:
        raise ConfigError(f"model {name!r} ({spec.cls.__module__}.{spec.cls.__qualname__}) could not be built "
                          f"from its config: {one_line(err)}") from err


def build_model(name: str, config: Config) -> nn.Module:
    """Build a registered model from a full config; records its registry name on it."""
    spec = model_spec(name)
    if not isinstance(config, spec.config_cls):
        raise ConfigError(f"model {name!r} is built from a {spec.config_cls.__name__}, not a {type(config).__name__}")
    parameters = count_parameters(name, config)
    if parameters > MAX_PARAMETERS:
        raise ConfigError(f"this {name} config would have {parameters:,} parameters ({4 * parameters / 1e9:.0f} GB "
                          f"of weights); at most {MAX_PARAMETERS:,} are allowed: check the sizes")
    model = construct(name, config)
    model.model_name = name
    return model
