"""`genlab evaluate`: every metric that applies to a run, printed as a table and kept in RUN/evaluation.json."""
from __future__ import annotations

import argparse
import sys

from genlab.cli.common import add_data_flags, add_device_flag
from genlab.evaluation import (
    EvaluationOptions,
    evaluate_run,
    evaluation_rows,
    format_table,
    run_dataset,
    write_evaluation,
)
from genlab.metrics import MAX_DECODES
from genlab.report import write_report
from genlab.train.checkpoint import load_run
from genlab.train.trainer import resolve_device


def cmd_evaluate(args: argparse.Namespace) -> int:
    options = EvaluationOptions(k=args.k, test_images=args.test_images, nll_images=args.nll_images,
                                fid_samples=args.fid_samples, skip_fid=args.skip_fid, classifier=args.classifier,
                                probe_train=args.probe_train, seed=args.seed, max_decodes=args.max_decodes)
    run = load_run(args.run, resolve_device(args.device))
    data = run_dataset(run.config, args.data_dir)
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
    p.add_argument("-k", type=int, default=1000, help="importance samples per image for the NLL (default 1000)")
    p.add_argument("--test-images", type=int, help="use the first N test images for every metric (default all)")
    p.add_argument("--nll-images", type=int, help="estimate the IWAE NLL on the first N of them (default all)")
    p.add_argument("--fid-samples", type=int, default=10000, help="model samples for the Fréchet distance "
                                                                   "(default 10000)")
    p.add_argument("--skip-fid", action="store_true", help="skip the Fréchet distances (no classifier needed)")
    p.add_argument("--classifier", metavar="RUN", help="classifier run for the features (default: one trained "
                                                       "once per dataset, cached under $GENLAB_CACHE or "
                                                       "~/.cache/genlab)")
    p.add_argument("--probe-train", type=int, help="training images for the linear probes (default all)")
    p.add_argument("--max-decodes", type=int, default=MAX_DECODES,
                   help=f"codes decoded per pass of the NLL estimate: bounds memory (default {MAX_DECODES})")
    p.add_argument("--seed", type=int, default=0, help="seeds posterior and model samples (default 0)")
    add_data_flags(p, with_name=False)
    add_device_flag(p)
    p.set_defaults(handler=cmd_evaluate)
