"""Frozen dataclass configs that round-trip through JSON and reject unknown keys."""
from __future__ import annotations

import dataclasses
from typing import Any, Self

from genlab.errors import ConfigError


class Config:
    """Mixin for frozen dataclass configs: `to_dict`, `from_dict`, `replace`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists when serialised)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build from a dict; unknown keys are an error, JSON lists become tuples."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no option(s) {', '.join(unknown)}; "
                f"valid options are {', '.join(cls.field_names())}"
            )
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**fixed)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (unknown names are an error)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with the help text (and choices) that the CLI shows for its flag."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds (for __post_init__ checks)."""
    if not condition:
        raise ConfigError(message)
