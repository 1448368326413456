"""``snn-perception train {dhz,unet}``: one verb, one module per model family."""

from __future__ import annotations

import argparse
import importlib

#: target → (module under snn_perception.commands, help)
TARGETS = {
    "dhz": ("train_dhz", "snnTrans-DHZ dehazer on raw/ + reference/ pairs"),
    "unet": ("train_unet", "ANN U-Net for segmentation or denoising (convert it afterwards)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="{" + ",".join(TARGETS) + "}", required=True)
    for name, (module, help_text) in TARGETS.items():
        # the verb's formatter, so each option's default is shown as in every other verb
        target = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=parser.formatter_class
        )
        try:
            importlib.import_module(f"snn_perception.commands.{module}").add_arguments(target)
        except ModuleNotFoundError:
            target.set_defaults(unavailable=f"'train {name}' is not available in this install")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "unavailable", None):
        print(f"snn-perception train: error: {args.unavailable}")
        return 2
    return importlib.import_module(f"snn_perception.commands.{TARGETS[args.target][0]}").run(args)
