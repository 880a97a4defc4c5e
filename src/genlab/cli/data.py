"""Commands on datasets: data list, data fetch."""
from __future__ import annotations

import argparse

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_data_flags


def cmd_data_list(args: argparse.Namespace) -> int:
    from genlab.data.catalog import list_datasets

    for status in list_datasets(args.data_dir):
        print(f"{status.name:<14} {'found  ' if status.available else 'missing'}  {status.detail}")
    print("folder:PATH    a folder of PNG/JPEG images (sub-folders become labels)")
    print("dsprites:PATH  the dSprites file dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, read without unpickling")
    print("celeba:PATH    a CelebA folder (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt): "
          "64x64 RGB, 40 attributes, decoded once into a cache")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from genlab.data.catalog import fetch_dataset

    print(fetch_dataset(args.name, args.data_dir))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("data", help=COMMANDS["data"].help, description="List or fetch datasets.")
    data_commands = p.add_subparsers(title="data commands", metavar="ACTION", required=True)
    q = data_commands.add_parser("list", help="each dataset: where it was found, or why not",
                                 description="Show each dataset and where it was found, or why not.")
    add_data_flags(q, with_name=False)
    q.set_defaults(handler=cmd_data_list)
    q = data_commands.add_parser("fetch", help="find or download a dataset, verifying checksums",
                                 description="Find a dataset or download it with checksum verification.")
    q.add_argument("name", metavar="NAME", help="fashion-mnist, mnist or cifar10")
    add_data_flags(q, with_name=False)
    q.set_defaults(handler=cmd_data_fetch)
