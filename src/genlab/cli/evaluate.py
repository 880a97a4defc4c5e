"""`genlab evaluate`: every metric that applies to a run, printed as a table and kept beside the run."""
from __future__ import annotations

import argparse

from genlab.cli.commands import COMMANDS
from genlab.cli.common import (
    add_config_flags,
    add_data_flags,
    add_device_flag,
    add_threads_flag,
    add_weights_flag,
    given,
    given_threads,
)
from genlab.options import EvaluationOptions
from genlab.runs.layout import EVALUATION, in_run


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genlab.tables import evaluation_rows, format_table
    from genlab.workflow import evaluate_command

    options = EvaluationOptions.from_dict(given(args, "evaluation"))
    done = evaluate_command(args.run, options, args.device, args.weights, args.data_dir,
                            threads=given_threads(args))
    if done is None:
        return 0  # under torchrun rank 0 alone prints
    result, path, report = done
    print(format_table(evaluation_rows(result)))
    print(f"wrote {path}; report: {report}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("evaluate", help=COMMANDS["evaluate"].help,
                            description="Measure every metric that applies to a run: test -ELBO and its parts, "
                                        "the importance-weighted NLL, reconstruction error, the Fréchet distance "
                                        "of samples in classifier feature space, and linear probes. Prints a "
                                        f"table and writes {in_run(EVALUATION)}. Runs trained with --binarize "
                                        "dynamic are tested on the fixed-seed binarization of the test set.")
    p.add_argument("run", metavar="RUN", help="run directory")
    add_config_flags(p, EvaluationOptions, "evaluation", aliases={"k": ("-k",)})
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    add_threads_flag(p)
    add_weights_flag(p)
    p.set_defaults(handler=cmd_evaluate)
