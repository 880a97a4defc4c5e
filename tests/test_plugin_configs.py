"""Generated plugin configs (hypothesis): fields of every kind, with and without defaults, ranges and choices,
registry defaults, and rules that pass, use require, or raise exceptions of their own. Installed as a
`genlab.models` entry point, each one leaves every command working or answering in one line: `genlab models`,
`train` with generated flags, the commands on the run it trained, and a command on an unrelated run."""
from __future__ import annotations

import dataclasses
import sys
import types
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from genlab import plugins
from genlab.cli import main
from genlab.config import Config, option, require
from genlab.data import catalog
from genlab.data.shapes import make_shapes
from genlab.models import registry

MODULE = "genlab_generated_plugin"
TRAIN = ["--data", "tiny-shapes", "--epochs", "1", "--max-steps", "1", "--batch-size", "16"]


@dataclasses.dataclass(frozen=True)
class BaseConfig(Config):
    image_shape: tuple[int, int, int] = option((1, 28, 28), "set from the data", low=1, high=2048)
    latent_dim: int = option(2, "size of the code", low=1, high=16)


class TinyAE(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.config, self.latent_dim = config, config.latent_dim
        pixels = config.image_shape[0] * config.image_shape[1] * config.image_shape[2]
        self.encoder = nn.Linear(pixels, config.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(config.latent_dim, pixels), nn.Unflatten(1, config.image_shape))

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z)

    def to_image(self, decoded):
        return torch.sigmoid(decoded)

    def reconstruct(self, x):
        return self.to_image(self.decode(self.encode(x)))

    def loss(self, x):
        rec = (self.reconstruct(x) - x).square().flatten(1).sum(1).mean()
        return {"loss": rec, "rec": rec}


def rule_that(kind: str):
    """A config's __post_init__: none, genlab's require, or exceptions of its own."""
    def check(self) -> None:
        if kind == "require":
            require(self.latent_dim <= 3, "latent_dim must be at most 3 here")
        elif kind == "value-error" and self.latent_dim > 3:
            raise ValueError("latent_dim above 3")
        elif kind == "key-error":
            raise KeyError("always")
        elif kind == "attribute-error":
            self.no_such_field.upper()
    return None if kind == "none" else check


KINDS = {"int": int, "float": float, "bool": bool, "str": str, "ints": tuple[int, ...], "pair": tuple[float, float],
         "int-or-none": int | None, "list": list[int], "dict": dict[str, int]}
FITTING = {"int": st.integers(0, 9), "float": st.floats(0, 5), "bool": st.booleans(), "str": st.sampled_from("ab"),
           "ints": st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
           "pair": st.tuples(st.floats(0, 5), st.floats(0, 5)), "int-or-none": st.none() | st.integers(0, 9),
           "list": st.tuples(st.integers(0, 9)), "dict": st.none()}  # a value of the kind (genlab refuses the last two)
VALUES = st.one_of(st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.text("ab1.-", max_size=4), st.none(), st.tuples(st.integers(0, 9), st.integers(0, 9)),
                   st.lists(st.integers(0, 9), max_size=2))
SOMETIMES = {"valid": 4, "missing": 1, "any": 1}  # how a field's default is drawn, by weight


@st.composite
def generated_field(draw) -> dict[str, Any]:
    """A field: a name (some clash with genlab's own), a kind (some unsupported), a default that mostly fits its
    kind (else missing, or any value at all), and now and then a range or choices it may break."""
    kind = draw(st.sampled_from(list(KINDS)))
    how = draw(st.sampled_from([mode for mode, weight in SOMETIMES.items() for _ in range(weight)]))
    default = {"valid": lambda: draw(FITTING[kind]), "missing": lambda: "missing", "any": lambda: draw(VALUES)}[how]()
    rarely = st.sampled_from([None, None, None, "some"])
    return {"name": draw(st.sampled_from(["alpha", "depth", "widths", "tag", "flag", "latent_dim", "epochs", "lr"])),
            "kind": kind, "default": default,
            "low": draw(st.integers(-2, 5)) if draw(rarely) else None,
            "high": draw(st.integers(5, 50)) if draw(rarely) else None,
            "choices": ("a", "b") if draw(rarely) else None}


PLUGIN = st.fixed_dictionaries({
    "fields": st.lists(generated_field(), max_size=3, unique_by=lambda f: f["name"]),
    "rule": st.sampled_from(["none", "none", "none", "require", "value-error", "key-error", "attribute-error"]),
    "defaults": st.sampled_from([{}, {}, {"latent_dim": 3}, {"alpha": 1}, {"latent_dim": 9}, {"unknown": 1}]),
    "flag": st.one_of(st.none(), st.tuples(st.sampled_from(["alpha", "depth", "widths", "tag", "flag", "latent-dim"]),
                                           st.sampled_from(["3", "0", "x", "1.5", "nan", "-2", "9", "a"]))),
})


def plugin_module(plugin: dict[str, Any]) -> types.ModuleType:
    """The plugin's module: its SPEC is built on first access, so that a class the dataclass machinery refuses
    (a mutable default) fails the entry point's load, as it would fail a real package's import."""
    def build_spec() -> registry.ModelSpec:
        fields = []
        for f in plugin["fields"]:
            spec = {} if f["default"] == "missing" else {
                "default": option(f["default"], f"generated {f['kind']}", f["choices"], low=f["low"], high=f["high"])}
            fields.append((f["name"], KINDS[f["kind"]], spec.get("default", dataclasses.field())))
        namespace = {"__post_init__": rule_that(plugin["rule"])} if plugin["rule"] != "none" else {}
        config_cls = dataclasses.make_dataclass("GeneratedConfig", fields, bases=(BaseConfig,), frozen=True,
                                                kw_only=True, namespace=namespace)
        config_cls.__module__ = MODULE
        return registry.ModelSpec(TinyAE, config_cls, plugin["defaults"], "a generated plugin")

    def attribute(name: str) -> Any:
        if name != "SPEC":
            raise AttributeError(name)
        return build_spec()

    module = types.ModuleType(MODULE)
    module.__getattr__ = attribute
    return module


def forget() -> None:
    registry.MODELS.pop("gen-model", None)
    sys.modules.pop(MODULE, None)
    for cached in (plugins.has_entry_points, registry.load_entry_points, catalog.load_entry_points):
        cached.cache_clear()


@pytest.fixture(scope="module")
def unrelated_run(tmp_path_factory):
    """A small dataset, and a vae run trained on it before any plugin is installed."""
    catalog.register_dataset("tiny-shapes", lambda data_dir: make_shapes(n_train=64, n_test=32, seed=0), replace=True)
    run = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train", "vae", "--hidden", "8", "--out", str(run), *TRAIN]) == 0
    yield run
    catalog.REGISTERED.pop("tiny-shapes", None)
    forget()


def works_or_one_line(argv: list[str], capsys) -> int:
    """The command's exit status, which is 0, or 2 with exactly one 'genlab: error:' line (--help: 0 or 2)."""
    try:
        code = main(argv)
    except SystemExit as stop:  # --help printed
        code = stop.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert code == 0 or (code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("genlab: error: ")), \
        (argv, code, err)
    return code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plugin=PLUGIN)
def test_every_command_works_or_answers_in_one_line(unrelated_run, tmp_path_factory, monkeypatch, capsys,
                                                     plugin) -> None:
    forget()
    point = EntryPoint("gen-model", f"{MODULE}:SPEC", plugins.MODELS_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [point] if group == plugins.MODELS_GROUP else [])
    monkeypatch.setitem(sys.modules, MODULE, plugin_module(plugin))
    try:
        out = tmp_path_factory.mktemp("gen")
        flag = [] if plugin["flag"] is None else [f"--{plugin['flag'][0]}", plugin["flag"][1]]
        assert works_or_one_line(["models", "-v"], capsys) == 0
        works_or_one_line(["train", "gen-model", "--help"], capsys)
        trained = works_or_one_line(["train", "gen-model", *flag, "--out", str(out / "run"), *TRAIN], capsys) == 0
        event("trained" if trained else "refused in one line")
        if trained:
            for argv in (["reconstruct", str(out / "run"), "-n", "2"], ["sample", str(out / "run"), "-n", "2"],
                         ["evaluate", str(out / "run"), "-k", "2", "--skip-fid"],
                         ["train", "--config", str(out / "run" / "config.json"), "--out", str(out / "again"),
                          "--max-steps", "1"]):
                works_or_one_line(argv, capsys)
        else:
            assert not (out / "run").exists()
        assert works_or_one_line(["sample", str(unrelated_run), "-n", "2"], capsys) == 0
    finally:
        forget()
