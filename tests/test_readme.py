"""The README against the program: its model table is the registry's, and its inversion examples parse, run as
written (no file the reader lacks) and name the default network and the extras that exist."""
from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from genlab.cli import build_parser
from genlab.cli.common import given
from genlab.cli.invert import ACTIONS
from genlab.data.photos import PHOTOS
from genlab.models.table import TABLE
from genlab.options import DEFAULT_NETWORK

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_models() -> list[str]:
    """The model names of the README's table, in its order."""
    lines = README[README.index("| model | what it is |"):].splitlines()[2:]  # past the header and its rule
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(re.match(r"\| `([^`]+)` \| \S", line).group(1))
    return rows


def readme_commands(prefix: str) -> list[str]:
    """The README's example command lines that start with prefix, without their comments."""
    return [line.split("  #")[0].strip() for line in README.splitlines() if line.startswith(prefix)]


def test_the_readme_model_table_is_the_registry_in_its_order() -> None:
    assert readme_models() == list(TABLE)


def test_the_readme_inversion_examples_run_as_written_on_what_the_program_uses() -> None:
    lines = readme_commands("genlab invert ")
    assert {shlex.split(line)[2] for line in lines} == set(ACTIONS), lines
    parser, networks = build_parser(), set()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])
        options = ACTIONS[args.invert_action].options.from_dict(given(args, "invert"))
        for field in ("image", "content", "style"):  # a file the reader does not have: use a sample photo
            assert getattr(options, field, None) is None, f"{line}: give --photo / --style-photo, not a file"
        for field in ("photo", "style_photo"):
            assert getattr(options, field, None) in (None, *PHOTOS), line
        networks.add(options.model)
    assert DEFAULT_NETWORK in networks  # the examples show the default network, which needs an extra
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set(re.findall(r"genlab\[([a-z,]+)\]", README))
    assert {"imagenet", "photos"} <= {extra for group in named for extra in group.split(",")}
    assert all(extra in extras for group in named for extra in group.split(",")), named
