"""The `genlab` command: train, sample, reconstruct, report, models, data, convarith, invert, explore, evaluate, serve."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import threading
import typing
from collections.abc import Iterator

from genlab.cli.commands import COMMANDS
from genlab.errors import GenlabError, clear_stop, did_you_mean, stop_with, stopping
from genlab.version import __version__

INVALID_CHOICE = re.compile(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)")


class Parser(argparse.ArgumentParser):
    """argparse with genlab's one-line errors: what was wrong, the closest real command or flag, and where the
    help is; exit status 2."""

    argv: list[str] = []  # the words being parsed: where a mistyped flag's command is found

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"genlab: error: {message}{self.guess(message)} (see `{self.prog} --help`)\n")

    def guess(self, message: str) -> str:
        """The closest command for an invalid choice, the closest flag of the named command for a stray one."""
        choice = INVALID_CHOICE.search(message)
        if choice:
            return did_you_mean(choice.group(1), [c.strip("' ") for c in choice.group(2).split(",")])
        if message.startswith("unrecognized arguments:"):
            flags = option_strings(self, self.argv)
            stray = [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("--")]
            return next((guess for word in stray if (guess := did_you_mean(word, flags, quote=False))), "")
        return ""


def option_strings(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Every flag of the (sub)command that argv names, following its words down the subcommands."""
    flags = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            word = next((w for w in argv if w in action.choices), None)
            if word is not None:
                rest = argv[argv.index(word) + 1:]
                return flags + option_strings(action.choices[word], rest)
    return flags


def named_command(argv: list[str]) -> str | None:
    """The command argv names (its first word that is not a flag), when it is one of genlab's."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for argv: the named command's module registers its full parser (every module's when argv is
    None); every other command is a one-line entry from the table, so that no module, and no torch, is imported
    for `genlab --help`."""
    parser = Parser(prog="genlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    if argv is None:
        wanted = {entry.module for entry in COMMANDS.values()}
    else:
        name = named_command(argv)
        wanted = {COMMANDS[name].module} if name else set()
    for module in dict.fromkeys(c.module for c in COMMANDS.values()):
        if module in wanted:
            importlib.import_module(f"genlab.cli.{module}").register(commands)
    for command, entry in COMMANDS.items():
        if command not in commands.choices:
            commands.add_parser(command, help=entry.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a bare `genlab`: what it can do, not an error
        build_parser(argv).print_help()
        return 0
    try:
        parser = build_parser(argv)
        parser.argv = argv
        args = parser.parse_args(argv)
    except SystemExit as stop:
        if stop.code == 2:  # a bad flag: Parser.error has printed the one line
            return 2
        raise  # --help, --version
    args.argv = argv
    clear_stop()
    with interrupts_recorded():
        try:
            return args.handler(args)
        except GenlabError as e:
            if not e.silent:  # an error every torchrun rank raised alike is printed by rank 0 alone
                print(f"genlab: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return interrupted(args)
        except BrokenPipeError:  # `genlab models | head`: the reader left; end as a piped Unix tool does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush fails no more
            return 128 + signal.SIGPIPE
        except Exception:
            stop = stopping()
            if stop is None:
                raise
            # a signal told this process to stop: whatever error its exception became on the way up (a library
            # may catch it and raise its own), the user gets the reason in one line
            if isinstance(stop, KeyboardInterrupt):
                return interrupted(args)
            print(f"genlab: error: {stop}", file=sys.stderr)
            return 2


def interrupted(args: argparse.Namespace) -> int:
    """Ctrl-C: one line, which may say what survives and how to go on, and the shell's status for SIGINT."""
    print(f"genlab: interrupted{getattr(args, 'on_interrupt', '')}", file=sys.stderr)
    return 130


@contextlib.contextmanager
def interrupts_recorded() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt wherever Python happens to be, as it always does, and is also recorded
    (genlab.errors.stop_with), so a library that turns it into its own error does not hide it. Left alone where
    an embedding program set its own SIGINT handler, and off the main thread, where no handler can be set."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def record(signum: int, frame: object) -> None:
        raise stop_with(KeyboardInterrupt())

    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
