"""Helpers shared by the CLI tests (imported by name: pytest puts tests/ on sys.path)."""
from __future__ import annotations

from genlab.cli import main


def fails(argv: list[str], capsys, *needles: str) -> str:
    """The command exits 2 with exactly one 'genlab: error:' line on stderr, no traceback, naming every needle."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("genlab: error: "), err
    for needle in needles:
        assert needle in err, err
    return err
