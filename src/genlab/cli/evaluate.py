"""`genlab evaluate`: every metric that applies to a run, printed as a table and kept in RUN/evaluation.json."""
from __future__ import annotations

import argparse
import sys

from genlab.cli.common import (
    add_config_flags,
    add_data_flags,
    add_device_flag,
    add_weights_flag,
    given,
    open_trained_run,
)
from genlab.evaluation import EvaluationOptions, evaluate_run, write_evaluation
from genlab.report import write_report
from genlab.tables import evaluation_rows, format_table
from genlab.train.trainer import resolve_device


def cmd_evaluate(args: argparse.Namespace) -> int:
    options = EvaluationOptions.from_dict(given(args, "evaluation"))
    run = open_trained_run(args, resolve_device(args.device))
    data = run.dataset(args.data_dir)
    result = evaluate_run(run, data, options, progress=sys.stderr.isatty())
    path = write_evaluation(run.path, result)
    print(format_table(evaluation_rows(result)))
    print(f"wrote {path}; report: {write_report(run.path)}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("evaluate", help="measure a run: -ELBO, IWAE NLL, Fréchet distance, probes",
                            description="Measure every metric that applies to a run: test -ELBO and its parts, "
                                        "the importance-weighted NLL, reconstruction error, the Fréchet distance "
                                        "of samples in classifier feature space, and linear probes. Prints a "
                                        "table and writes RUN/evaluation.json. Runs trained with --binarize "
                                        "dynamic are tested on the fixed-seed binarization of the test set.")
    p.add_argument("run", metavar="RUN", help="run directory")
    add_config_flags(p, EvaluationOptions, "evaluation", aliases={"k": ("-k",)})
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    add_weights_flag(p)
    p.set_defaults(handler=cmd_evaluate)
