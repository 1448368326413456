"""Every verb's ``--help`` ends with examples that parse, and ``--weights`` names its default and the
shipped choices."""

from __future__ import annotations

import argparse
import shlex

import pytest

from snn_perception import cli
from snn_perception.runtime.weights import shipped_for

cli._register_known()
VERBS = sorted(cli.COMMANDS)


def _parser(verb: str) -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog=f"snn-perception {verb}", formatter_class=cli._HelpWithDefaults)
    importlib.import_module(f"snn_perception.commands.{cli.COMMANDS[verb][0]}").add_arguments(parser)
    return parser


def _examples(parser: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, str]]:
    """(the parser that owns them, example) for a verb and its sub-commands (``train dhz``…)."""
    found = [(parser, line) for line in getattr(parser, "examples", ())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _examples(sub)
    return found


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_shows_examples_that_its_parser_accepts(verb: str) -> None:
    parser = _parser(verb)
    examples = _examples(parser)
    assert examples, f"{verb}: no examples in --help"
    for owner, line in examples:
        assert "examples:" in owner.format_help()
        words = shlex.split(line, comments=True)
        assert words[:2] == ["snn-perception", verb], line
        try:  # with the verb's parser: 'train dhz …' goes through 'train' as on the command line
            parser.parse_args(words[2:])
        except SystemExit as exc:  # argparse reports the problem on stderr and exits
            pytest.fail(f"example no longer parses ({exc}): {line}")


def test_a_broken_example_is_caught() -> None:
    """The check above can fail: an example with an option the verb does not have."""
    parser = _parser("enhance")
    with pytest.raises(SystemExit):
        parser.parse_args(shlex.split("dive.jpg --out x/ --no-such-option"))


@pytest.mark.parametrize(
    ("verb", "task", "default"), [("enhance", "dehaze", "dhz"), ("segment", "segment", "spiking_unet")]
)
def test_weights_help_names_the_default_and_the_shipped_choices(verb: str, task: str, default: str) -> None:
    text = " ".join(_parser(verb).format_help().split())
    assert f"default: {default}" in text
    shipped = shipped_for(task)
    assert default in shipped
    for name in shipped:
        assert name in text


def test_help_and_argument_refusals_never_load_torch() -> None:
    """A typo is answered at once: every verb's ``--help`` and its argument errors come before torch
    (~1 s to import) loads, as the CLI's design promises. Checked in a fresh interpreter."""
    import subprocess
    import sys

    argvs = [[verb, flag] for flag in ("--help", "--no-such-option") for verb in VERBS]
    code = (
        "import sys\n"
        "from snn_perception import cli\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    assert 'torch' not in sys.modules, argv\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("usage: snn-perception") >= len(VERBS)  # the help texts were really made
