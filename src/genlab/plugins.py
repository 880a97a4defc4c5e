"""Python entry points: how a pip-installed package adds models (`genlab.models`) and datasets
(`genlab.datasets`) that every genlab command then knows.

A broken entry point (its import fails, it names the wrong kind of object, its config cannot be built) is
refused alone: the listing commands name it in one line, using it by name is a one-line error, and every other
model, dataset and command works as before.
"""
from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points
from typing import Any, NamedTuple

MODELS_GROUP = "genlab.models"
DATASETS_GROUP = "genlab.datasets"


class Plugin(NamedTuple):
    """One entry point, loaded: the object it names, or None and the reason it could not be loaded."""

    group: str
    name: str
    value: str             # what the entry point names, "module:attribute"
    loaded: Any
    problem: str | None    # why it could not be loaded, on one line

    def refusal(self, problem: str | None = None) -> str:
        """One line naming the entry point, its package's object and what is wrong with it."""
        return (f"the {self.group} entry point {self.name!r} ({self.value}) is not usable: "
                f"{problem or self.problem}; fix or uninstall the package that declares it")


@functools.cache
def has_entry_points(group: str) -> bool:
    """Whether any installed package declares an entry point in `group` (nothing is imported to find out; the
    installed packages are read once per process, ~10 ms)."""
    return bool(entry_points(group=group))


def one_line(error: BaseException) -> str:
    """'TypeError: text' with the text's whitespace folded: a plugin's exception as part of a one-line error."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}".rstrip(": ")


def load_plugins(group: str) -> list[Plugin]:
    """Each entry point of `group`, sorted by name, loaded; one whose import fails keeps the reason instead."""
    found = []
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        try:
            found.append(Plugin(group, point.name, point.value, point.load(), None))
        except Exception as err:  # a plugin's own import error must not break every genlab command
            found.append(Plugin(group, point.name, point.value, None, f"it could not be loaded ({one_line(err)})"))
    return found


def warn(refusals: dict[str, str]) -> None:
    """Each refused entry point as one warning line on stderr (for the commands that list models or datasets)."""
    for message in refusals.values():
        print(f"genlab: warning: {message}", file=sys.stderr)
