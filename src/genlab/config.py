"""Frozen dataclass configs that round-trip through JSON, reject unknown keys and check every field.

Each field is declared with `option()`: its help, choices and range live there, once. The CLI derives its
flags from them, and every value (typed, from JSON, or from a flag) is checked against them on construction.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Self

from genlab.errors import ConfigError, GenlabError

MAX_TUPLE = 64  # elements of a tuple field (hidden sizes, channels): a guard against absurd configs


class Config:
    """Mixin for frozen dataclass configs: `to_dict`, `from_dict`, `replace`, field checks before `check()`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None:
            cls.check_rules = own  # a subclass without rules of its own keeps its parent's

        def __post_init__(self) -> None:  # the dataclass __init__ calls this: fields first, then the class's rules
            check_fields(self)
            rules = getattr(type(self), "check_rules", None)
            if rules is not None:
                run_rules(self, rules)
        cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists when serialised)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: Any) -> Self:
        """Build from a dict; unknown keys are an error, JSON lists become tuples, every value is checked."""
        if not isinstance(values, dict):
            raise ConfigError(f"{cls.__name__} needs a JSON object of options, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no option(s) {', '.join(map(one_line_name, unknown))}; "
                f"valid options are {', '.join(cls.field_names())}"
            )
        missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                   if f.name not in values and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{cls.__name__} needs {', '.join(missing)}: the class declares no default for it")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**fixed)

    def unused_fields(self) -> list[str]:
        """Fields that do not apply to this config (an MLP's conv_channels): their option()'s `when` fails."""
        return [f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if any(getattr(self, other) not in values for other, values in (f.metadata.get("when") or {}).items())]

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (unknown names are an error)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def option(default: Any, help: str, choices: tuple[str, ...] | None = None,
           low: float | None = None, high: float | None = None, when: dict[str, tuple] | None = None,
           max_items: int = MAX_TUPLE) -> Any:
    """A config field with its help text, choices and inclusive range [low, high] (per element for tuples, which
    hold at most `max_items`); `when` ({field: values}) says the field applies only while those fields hold one
    of those values."""
    metadata = {"help": help, "choices": choices, "low": low, "high": high, "when": when}
    if max_items != MAX_TUPLE:
        metadata["max_items"] = max_items
    return dataclasses.field(default=default, metadata=metadata)


def one_line_name(key: Any) -> str:
    """A key as an error message shows it: as typed, or quoted with escapes when it holds control characters or
    spaces (a message stays one line whatever a hand-edited file holds)."""
    text = str(key)
    return text if text.isprintable() and " " not in text else repr(text)


def run_rules(config: Any, rules: Any) -> None:
    """A config class's own checks (its __post_init__); an exception of theirs that is not genlab's becomes a
    one-line ConfigError naming the class (a plugin's rule raising ValueError must not end in a traceback)."""
    try:
        rules(config)
    except GenlabError:
        raise
    except Exception as err:
        cls = type(config)
        raise ConfigError(f"{cls.__module__}.{cls.__qualname__} refuses these values: {type(err).__name__}: "
                          f"{' '.join(str(err).split())} (a config's rules should raise genlab's ConfigError, "
                          f"or use genlab.config.require)") from err


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds (for __post_init__ checks)."""
    if not condition:
        raise ConfigError(message)


SCALAR_KINDS = (bool, int, float, str)
SUPPORTED_KINDS = ("bool, int, float or str, a tuple of ints, floats or strings (tuple[int, ...], tuple[int, int]), "
                   "or one of those | None")


def supported_kind(kind: Any) -> bool:
    """Whether check_value checks a field of this annotation, and the command line can make a flag of it."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not type(None)]
        return len(args) == 2 and len(rest) == 1 and supported_kind(rest[0])
    if origin is tuple:
        elements = args[:1] if len(args) == 2 and args[1] is Ellipsis else args
        return bool(elements) and len(set(elements)) == 1 and elements[0] in (int, float, str)
    return kind in SCALAR_KINDS


def kind_name(kind: Any) -> str:
    """An annotation as written: 'int', 'list[int]', 'dict[str, int]'."""
    return kind.__name__ if isinstance(kind, type) and not typing.get_args(kind) else str(kind).replace("typing.", "")


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of a config class."""
    return typing.get_type_hints(cls)


def check_fields(config: Any) -> None:
    """Types, choices and ranges of every field, before the class's own rules run."""
    hints = field_types(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        checked = check_value(field.name, value, hints[field.name], field.metadata)
        if checked is not value:
            object.__setattr__(config, field.name, checked)


def check_value(name: str, value: Any, kind: Any, meta: Any) -> Any:
    """value checked against its annotation and option(); ints become floats for float fields."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        kind = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return check_tuple(name, value, args, meta)
    return check_scalar(name, value, kind, meta)


def check_tuple(name: str, value: Any, args: tuple, meta: Any) -> tuple:
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple):
        raise ConfigError(f"{name} must be a list of numbers, got {value!r} ({type(value).__name__})")
    fixed_length = not (len(args) == 2 and args[1] is Ellipsis)
    if fixed_length and len(value) != len(args):
        raise ConfigError(f"{name} must have {len(args)} entries, got {len(value)}: {value!r}")
    most = meta.get("max_items", MAX_TUPLE)
    if len(value) > most:
        raise ConfigError(f"{name} has {len(value)} entries; at most {most} are allowed")
    element = args[0]
    return tuple(check_scalar(f"each entry of {name}", v, element, meta) for v in value)


def check_scalar(name: str, value: Any, kind: Any, meta: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r} ({type(value).__name__})")
        return value
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        value = float(value)
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
    check_range(name, value, meta)
    return value


def check_range(name: str, value: Any, meta: Any) -> None:
    choices, low, high = meta.get("choices"), meta.get("low"), meta.get("high")
    if choices and value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}, got {value!r}")
