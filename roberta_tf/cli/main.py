"""`roberta-tf`: the subcommand registry and the console-script entry point (`run`).

    roberta-tf SUBCOMMAND [flags]      run a subcommand
    roberta-tf --help | help           list the subcommands
    roberta-tf help SUBCOMMAND         a subcommand's flags (= roberta-tf SUBCOMMAND --help)
    roberta-tf --version

Adding a subcommand: write `roberta_tf/cli/<name>.py` following `command.py`'s contract and
add it to `SUBCOMMANDS`. Dispatch is on argv[1]; everything after it belongs to the
subcommand, which parses it with its own `absl.flags.FlagValues`.
"""

import difflib
import importlib
import os
import sys

from absl import app
from absl import flags

from roberta_tf.cli import command

# name -> module, in the order `roberta-tf --help` lists them: the tour first, then the
# commands on any artifact, then making artifacts. Modules are imported only when needed
# (listing imports them all, cheaply: they import TensorFlow inside `execute`).
SUBCOMMANDS = {
    "demo": "roberta_tf.cli.demo",
    "predict": "roberta_tf.cli.predict",
    "evaluate": "roberta_tf.cli.evaluate",
    "inspect": "roberta_tf.cli.inspect",
    "export": "roberta_tf.cli.export",
    "convert": "roberta_tf.cli.convert",
    "verify": "roberta_tf.cli.verify",
    "tokenize": "roberta_tf.cli.tokenize",
    "benchmark": "roberta_tf.cli.benchmark",
}

DESCRIPTION = "RoBERTa tokenizer and text classifier tools on TensorFlow."


def load_subcommand(name):
    """The module of subcommand `name` (a KeyError if there is none)."""
    return importlib.import_module(SUBCOMMANDS[name])


def overview_text():
    """The top-level help: usage and the registered subcommands with their summaries."""
    width = max(len(name) for name in [*SUBCOMMANDS, "help"])
    lines = [f"usage: {command.PROG} SUBCOMMAND [flags]", "", DESCRIPTION, "", "subcommands:"]
    for name in SUBCOMMANDS:
        lines.append(f"  {name:<{width}}  {load_subcommand(name).SUMMARY}")
    lines.append(f"  {'help':<{width}}  Show this list, or `{command.PROG} help SUBCOMMAND` for a subcommand's flags.")
    lines += ["", f"Run '{command.PROG} SUBCOMMAND --help' for the flags of a subcommand."]
    return "\n".join(lines) + "\n"


def _unknown(name):
    kind = "flag" if name.startswith("-") else "subcommand"
    message = f"unknown {kind} {name!r}"
    close = difflib.get_close_matches(name.lstrip("-"), list(SUBCOMMANDS), n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    message += f" Available subcommands: {', '.join(SUBCOMMANDS)}"
    command.error(command.PROG, message, hint=True)
    return command.EXIT_USAGE


def main(argv):
    """Dispatches on argv[1]; returns the exit code. argv[0] is the program name."""
    args = list(argv[1:])
    if not args:
        sys.stderr.write(overview_text())
        command.error(command.PROG, "missing SUBCOMMAND")
        return command.EXIT_USAGE
    first = args[0]
    if first == "help" or first in command.HELP_ARGS:
        if first == "help" and len(args) > 1:
            if args[1] not in SUBCOMMANDS:
                return _unknown(args[1])
            return load_subcommand(args[1]).main([f"{command.PROG} {args[1]}", "--help"])
        sys.stdout.write(overview_text())
        sys.stdout.flush()
        return command.EXIT_OK
    if first == "--version":
        from roberta_tf import __version__

        sys.stdout.write(f"{command.PROG} {__version__}\n")
        return command.EXIT_OK
    if first not in SUBCOMMANDS:
        return _unknown(first)
    return load_subcommand(first).main([f"{command.PROG} {first}", *args[1:]])


def _parse_absl_flags(argv):
    # absl.app needs its global FLAGS parsed; they keep their defaults (absl's logging setup).
    # Each subcommand parses its part of argv with its own FlagValues, in `main`.
    flags.FLAGS([argv[0]])
    return argv


def run(argv=None):
    """Console-script entry point (`roberta-tf`, `python -m roberta_tf.cli`): exits the process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ info/warning banners
    app.run(main, argv=sys.argv if argv is None else argv, flags_parser=_parse_absl_flags)
