"""`--help` everywhere: the whole `stadsmunt` parser tree, walked from ops.cli's own
build_parser(), every subparser recursively: each option and positional explains itself,
each command lists its subcommands with a help line, and each command's help ends with
an example of that very command."""
from __future__ import annotations

import argparse

import pytest

from ops.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: tuple = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, path + (name,))


def _is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


COMMANDS = [(path, parser) for path, parser in _walk(build_parser()) if path]


def _examples(epilog: str) -> list[str]:
    """The lines under an `example:` heading of an epilog (stripped, up to a blank
    line), with continuation lines (after a trailing backslash) left out."""
    lines = epilog.splitlines()
    found, inside, continued = [], False, False
    for line in lines:
        if line.strip() in ("example:", "examples:"):
            inside, continued = True, False
            continue
        if inside and not line.strip():
            inside = False
        if inside and line.startswith("  "):
            if not continued:
                found.append(line.strip())
            continued = line.rstrip().endswith("\\")
    return found


def test_the_walk_reaches_every_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    for expected in ("demo", "keygen", "keys show", "genesis", "network init", "up",
                     "node run", "node gateway", "node init", "node evidence",
                     "client status", "client recovery cancel", "gov propose", "gov show",
                     "audit", "export", "backup", "restore", "bench"):
        assert expected in names
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_and_positional_has_help(path, parser):
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            # the subcommands are listed, each with its help line
            for choice in action._choices_actions:
                assert choice.help and choice.help.strip(), (path, choice.dest)
            assert set(c.dest for c in action._choices_actions) == set(action.choices), path
            continue
        assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), \
            (path, action.dest)
    text = parser.format_help()     # every help renders (no bad % in a help text)
    assert text.startswith("usage: stadsmunt " + " ".join(path))


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_an_example_of_itself(path, parser):
    command = "stadsmunt " + " ".join(path)
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter, path
    assert parser.epilog, path
    examples = _examples(parser.epilog)
    if _is_leaf(parser):
        assert examples and any(e == command or e.startswith(command + " ")
                                for e in examples), (path, examples)
    else:
        # a group's examples are of its commands (or of the group with its options)
        assert examples and all(e.startswith("stadsmunt ") for e in examples), \
            (path, examples)
    # the example shows in --help as written (raw, not re-wrapped)
    help_text = parser.format_help()
    for example in examples:
        assert "\n  " + example in help_text, (path, example)


def test_the_top_level_help_lists_every_command_with_a_line():
    parser = build_parser()
    text = parser.format_help()
    for path, _ in COMMANDS:
        if len(path) == 1:
            assert f"    {path[0]}" in text, path
