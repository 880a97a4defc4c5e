"""The `genlab` command: train, sample, reconstruct, report, models, data, convarith, invert, explore, evaluate, serve."""
from __future__ import annotations

import argparse
import sys
import typing

from genlab.cli import convarith, data, evaluate, explore, invert, runs, serve
from genlab.errors import GenlabError
from genlab.train import distributed

# each adds its subcommands with register(commands)
COMMAND_MODULES = (runs, data, convarith, invert, explore, evaluate, serve)


class Parser(argparse.ArgumentParser):
    """argparse with genlab's one-line errors: what was wrong and where the help is, exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"genlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="genlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        if stop.code == 2:  # a bad flag: Parser.error has printed the one line
            return 2
        raise  # --help
    args.argv = argv
    try:
        return args.handler(args)
    except GenlabError as e:
        if distributed.should_print(e):  # an error every torchrun rank raised alike is printed by rank 0
            print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a command may say what survives and how to go on
        print(f"genlab: interrupted{getattr(args, 'on_interrupt', '')}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
