"""``linekeeper --help`` and every command's: each command says in a line what it does, each
option what it is for, in plain words (no reST markup such as ``this``, shown raw)."""

import argparse

from firmware.cli import build_parser


def _parsers(parser, path):
    """``(path, parser, {subcommand: its help})`` for ``parser`` and every parser under it."""
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + [name])
    yield path, parser, helps


def test_every_command_and_option_says_what_it_is_for():
    """`linekeeper --help` began "The ``linekeeper`` command." (a docstring's markup shown
    raw); `linekeeper calls --help` had no description; `--data-dir` no help on `calls`,
    `report` and most other commands."""
    problems = []
    for path, parser, helps in _parsers(build_parser(), ["linekeeper"]):
        where = " ".join(path)
        if not parser.description:
            problems.append("%s: no description" % where)
        elif "``" in parser.description or "\n" in parser.description.strip():
            problems.append("%s: description not one plain line: %r" % (where, parser.description))
        for name, said in helps.items():
            if not said:
                problems.append("%s %s: no help in the list of commands" % (where, name))
            elif "``" in said:
                problems.append("%s %s: reST markup in its help: %r" % (where, name, said))
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            option = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                problems.append("%s %s: no help" % (where, option))
            elif "``" in action.help:
                problems.append("%s %s: reST markup in its help: %r" % (where, option, action.help))
    assert not problems, "\n".join(problems)
