"""`genlab evaluate`: every metric that applies to a run, printed as a table and kept in RUN/evaluation.json."""
from __future__ import annotations

import argparse
import sys

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_config_flags, add_data_flags, add_device_flag, add_weights_flag, given
from genlab.options import EvaluationOptions


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genlab.evaluation import evaluate_run, load_everywhere, log_to_stderr, write_evaluation
    from genlab.report import write_report
    from genlab.tables import evaluation_rows, format_table
    from genlab.train import distributed
    from genlab.train.trainer import resolve_device

    options = EvaluationOptions.from_dict(given(args, "evaluation"))
    device = resolve_device(args.device)
    world = distributed.join(device)  # under torchrun the expensive estimates are sharded over the ranks
    run = load_everywhere(world, args.run, world.place(device), args.weights)
    note = run.weights_note()
    if note and world.writes:
        print(f"genlab: {note}", file=sys.stderr, flush=True)
    data = run.dataset(args.data_dir)
    log = log_to_stderr if world.writes else (lambda line: None)
    result = evaluate_run(run, data, options, log, progress=sys.stderr.isatty() and world.writes, world=world)
    if not world.writes:
        return 0  # rank 0 alone writes and prints
    path = write_evaluation(run.path, result)
    print(format_table(evaluation_rows(result)))
    print(f"wrote {path}; report: {write_report(run.path)}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("evaluate", help=COMMANDS["evaluate"].help,
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
