"""Python entry points: how a pip-installed package adds models (`genlab.models`) and datasets
(`genlab.datasets`) that every genlab command then knows."""
from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points
from typing import Any

MODELS_GROUP = "genlab.models"
DATASETS_GROUP = "genlab.datasets"


@functools.cache
def has_entry_points(group: str) -> bool:
    """Whether any installed package declares an entry point in `group` (nothing is imported to find out; the
    installed packages are read once per process, ~10 ms)."""
    return bool(entry_points(group=group))


def entry_point_objects(group: str) -> list[tuple[str, Any]]:
    """(name, loaded object) for each entry point of `group`; a broken one is named on stderr and skipped."""
    found = []
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        try:
            found.append((point.name, point.load()))
        except Exception as err:  # a plugin's own import error must not break every genlab command
            print(f"genlab: warning: the {group} entry point {point.name!r} ({point.value}) could not be "
                  f"loaded and is skipped: {type(err).__name__}: {err}", file=sys.stderr)
    return found
