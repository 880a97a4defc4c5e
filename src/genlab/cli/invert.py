"""Commands that optimise pixels through a CNN: invert class, invert dream, invert style.

Each flag is derived from a field of the option sets in genlab.options; genlab.invert.actions does the work."""
from __future__ import annotations

import argparse
from typing import NamedTuple

from genlab.cli.commands import COMMANDS
from genlab.cli.common import add_config_flags, add_threads_flag, given, given_threads
from genlab.options import ClassOptions, DreamOptions, StyleOptions

METAVARS = {"weights": "FILE", "classes": "C", "judge": "MODEL", "save_every": "N", "photo": "NAME",
            "style_photo": "NAME", "content_layers": "LAYER", "style_layers": "LAYER"}


class Action(NamedTuple):
    options: type  # the config whose fields are the action's flags
    positionals: tuple[str, ...]  # fields taken as optional positional arguments
    help: str
    description: str


ACTIONS = {
    "class": Action(ClassOptions, ("model",), "pictures that a classifier takes for the classes you name",
                    "Ascend one class score (the logit) per picture and print each class's probability before and "
                    "after. Recipes: robust (default; an image in a decorrelated colour and Fourier basis, seen "
                    "through random jitter, scale and rotation) and seeds (pixels, jitter, L2, clipping, periodic "
                    "blur)."),
    "dream": Action(DreamOptions, ("image",), "DeepDream: amplify what a layer sees in an image",
                    "Ascend 0.5 * ||a||^2 of one layer's activation a over a few octaves (scales), coarse to fine, "
                    "with jitter; prints the norm before and after."),
    "style": Action(StyleOptions, ("content", "style"),
                    "style transfer: CONTENT's layout in STYLE's texture (Gatys et al.)",
                    "Optimise an image whose features match CONTENT at the content layers and whose Gram matrices "
                    "match STYLE at the style layers, plus a total-variation term; prints both losses before and "
                    "after."),
}


def cmd_invert(args: argparse.Namespace) -> int:
    """Build the action's options from the flags given, run it in the library, print what it says."""
    from genlab.invert.actions import run_inversion

    options = ACTIONS[args.invert_action].options.from_dict(given(args, "invert"))
    output = run_inversion(options, progress=True, threads=given_threads(args), log=print)  # the device first
    for line in output.lines:
        print(line)
    if output.path is not None:
        print(output.path)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("invert", help=COMMANDS["invert"].help,
                            description="The image is the parameter: gradient steps change the pixels, not the "
                                        "weights. See docs/inversion.md.")
    actions = p.add_subparsers(title="invert commands", metavar="ACTION", required=True)
    for name, action in ACTIONS.items():
        q = actions.add_parser(name, help=action.help, description=action.description)
        add_config_flags(q, action.options, "invert", aliases={"classes": ("--class",)}, metavars=METAVARS,
                         positionals=action.positionals, switches=True)
        add_threads_flag(q)
        q.set_defaults(handler=cmd_invert, invert_action=name)
