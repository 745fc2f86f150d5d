"""Machinery shared by the `roberta-tf` subcommands: flags, modes, help, errors and exit codes.

A subcommand is a module of this package with:

    NAME = "tokenize"            # the word after `roberta-tf`
    SUMMARY = "..."              # one line, listed by `roberta-tf --help`
    DESCRIPTION = "..."          # optional, shown by `roberta-tf NAME --help`
    ARGS_USAGE = None            # optional, e.g. "FILE..." if it takes positional arguments

    def define_flags(flag_values):   # define flags on *this* FlagValues (never absl's FLAGS)
    def execute(flag_values, args):  # the work; returns an exit code or None (= 0)
    def main(argv):                  # return command.run_subcommand(sys.modules[__name__], argv)
    USES_TENSORFLOW = False          # optional: skip the quiet TensorFlow import before `execute`

plus one line in `main.SUBCOMMANDS`. A subcommand with modes (`roberta-tf convert fairseq|hf`)
has `MODES = {"fairseq": Mode(summary, define_flags, execute), ...}` instead of `execute`: the
mode is the first argument, and only its flags (plus the subcommand's shared `define_flags`)
exist, so a flag of another mode is an error, never silently ignored. Required flags are
checked by one helper, `require`.

Every `main(argv)` call parses `argv` with a fresh `absl.flags.FlagValues`, so subcommands can
be run (and tested) in-process, repeatedly, without touching absl's global `FLAGS`.
Subcommand modules import TensorFlow inside `execute`, so `--help` and flag errors answer
without loading it.

Exit codes: 0 success, 1 runtime error (`CommandError`, `ValueError`, `OSError`),
2 usage error (`UsageError`, bad flags), 130 interrupted. Errors are one line on stderr,
without a traceback (`--verbose` adds it); any other exception is also one line and exit 1.
"""

import dataclasses
import os
import sys
import textwrap
import traceback
from typing import Callable

from absl import flags
from absl import logging

PROG = "roberta-tf"
HELP_ARGS = ("-h", "-help", "--help", "--helpshort", "--helpfull", "-?")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A runtime failure with a message for the user (exit code 1)."""

    exit_code = EXIT_ERROR


class UsageError(CommandError):
    """The command line is wrong (exit code 2)."""

    exit_code = EXIT_USAGE


@dataclasses.dataclass(frozen=True)
class Mode:
    """One mode of a subcommand: its help line, its own flags and the work."""

    summary: str
    define_flags: Callable
    execute: Callable
    description: str = ""


def require(flag_values, *names):
    """UsageError naming every flag of `names` that was not given (the one required-flag check)."""
    missing = [f"--{name}" for name in names if flag_values[name].value in (None, "", [])]
    if missing:
        raise UsageError(f"{', '.join(missing)} required")


def one_line(message):
    """`message` on a single line (multi-line messages joined with '; ')."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(lines) or "unknown error"


def error(prog, message, hint=False):
    """Writes `prog: error: message` (one line) to stderr."""
    text = f"{prog}: error: {one_line(message)}"
    if hint:
        text += f" (see '{prog} --help')"
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def define_common_flags(flag_values):
    """Flags every subcommand has."""
    flags.DEFINE_integer(
        "verbosity",
        None,
        "Logging verbosity: -1 warnings and errors only, 0 info (default), 1 debug.",
        short_name="v",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "verbose", False, "On an error, print the full traceback after the one-line message.", flag_values=flag_values
    )


def new_flag_values(module, mode=None):
    """A fresh FlagValues with the common flags, `module`'s flags and `mode`'s."""
    flag_values = flags.FlagValues()
    define_common_flags(flag_values)
    module.define_flags(flag_values)
    if mode is not None:
        module.MODES[mode].define_flags(flag_values)
    return flag_values


def _wants_help(args):
    for arg in args:
        if arg == "--":
            return False
        if arg in HELP_ARGS:
            return True
    return False


def _render_flag(flag):
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    if flag.short_name:
        name = f"-{flag.short_name},{name}"
    text = f"{name}: {flag.help}"
    if flag.default is not None:
        text += f"\n(default: {flag.default_as_str})"
    lines = []
    for i, paragraph in enumerate(text.split("\n")):
        indent = "  " if i == 0 else "    "
        lines += textwrap.wrap(paragraph, width=100, initial_indent=indent, subsequent_indent="    ")
    return "\n".join(lines)


def _flags_text(flag_values, skip=()):
    lines, seen = [], set(skip)
    for name in flag_values:  # definition order; short names map to the same Flag
        flag = flag_values[name]
        if flag.name != name or flag.name in seen:
            continue
        seen.add(flag.name)
        lines.append(_render_flag(flag))
    return lines


def help_text(module, flag_values, mode=None):
    """`--help` for a subcommand (or one of its modes): usage, description and flags in
    definition order. Without a mode, a subcommand with modes lists every mode's flags."""
    modes = getattr(module, "MODES", None)
    prog = f"{PROG} {module.NAME}"
    args_usage = getattr(module, "ARGS_USAGE", None)
    if modes:
        prog += f" {mode}" if mode else f" {'|'.join(modes)}"
    parts = [f"usage: {prog} [flags]" + (f" {args_usage}" if args_usage else ""), "",
             modes[mode].summary if mode else module.SUMMARY]
    descriptions = [modes[mode].description] if mode else []
    descriptions.append(getattr(module, "DESCRIPTION", ""))
    for description in descriptions:
        if description:
            parts += ["", textwrap.dedent(description).strip()]
    parts += ["", "flags:"]
    parts += _flags_text(flag_values)
    parts.append("  -h,--help: show this help and exit.")
    if modes and mode is None:
        shared = set(flag_values)
        for name, entry in modes.items():
            parts += ["", f"{name}: {entry.summary}", "", f"flags of `{PROG} {module.NAME} {name}` "
                      f"(`{PROG} {module.NAME} {name} --help` says more):"]
            parts += _flags_text(new_flag_values(module, name), skip=shared)
    return "\n".join(parts) + "\n"


def _quiet_broken_stdout():
    """After EPIPE on stdout, point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def _split_mode(module, args):
    """(mode, remaining args) for a subcommand with MODES: the mode is the first argument."""
    modes = module.MODES
    if args and not args[0].startswith("-"):
        if args[0] not in modes:
            raise UsageError(f"unknown mode {args[0]!r}: say `{PROG} {module.NAME} {'|'.join(modes)} ...`")
        return args[0], args[1:]
    raise UsageError(f"say which: `{PROG} {module.NAME} {'|'.join(modes)} [flags]`")


def run_subcommand(module, argv):
    """Parses `argv` (argv[0] = program name) for `module` and runs it; returns the exit code."""
    prog = f"{PROG} {module.NAME}"
    argv = list(argv) if argv else [prog]
    args, mode = argv[1:], None
    if getattr(module, "MODES", None):
        if (not args or args[0] not in module.MODES) and _wants_help(args):
            sys.stdout.write(help_text(module, new_flag_values(module)))
            sys.stdout.flush()
            return EXIT_OK
        try:
            mode, args = _split_mode(module, args)
        except UsageError as e:
            error(prog, e, hint=True)
            return EXIT_USAGE
        prog = f"{prog} {mode}"
    flag_values = new_flag_values(module, mode)
    if _wants_help(args):
        sys.stdout.write(help_text(module, flag_values, mode))
        sys.stdout.flush()
        return EXIT_OK
    try:
        args = flag_values([prog, *args])[1:]
    except flags.Error as e:
        error(prog, e, hint=True)
        return EXIT_USAGE
    if args and not getattr(module, "ARGS_USAGE", None):
        error(prog, f"unexpected argument(s): {' '.join(args)}", hint=True)
        return EXIT_USAGE
    if flag_values["verbosity"].value is not None:
        logging.set_verbosity(flag_values["verbosity"].value)
    execute = module.MODES[mode].execute if mode else module.execute
    if getattr(module, "USES_TENSORFLOW", True) and not flag_values.verbose:
        import_tensorflow_quietly()
    try:
        code = execute(flag_values, args)
        return EXIT_OK if code is None else int(code)
    except CommandError as e:
        _traceback_if(flag_values.verbose)
        error(prog, e, hint=isinstance(e, UsageError))
        return e.exit_code
    except BrokenPipeError:
        _quiet_broken_stdout()  # the reader went away (`| head`): stop quietly
        return EXIT_ERROR
    except (ValueError, OSError) as e:
        _traceback_if(flag_values.verbose)
        error(prog, e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        error(prog, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a bug or a runtime's own error: still one line, exit 1
        _traceback_if(flag_values.verbose)
        message = getattr(e, "message", None) or str(e) or type(e).__name__
        error(prog, f"{type(e).__name__}: {message}" + ("" if flag_values.verbose else " (--verbose shows the traceback)"))
        return EXIT_ERROR


def import_tensorflow_quietly():
    """Imports TensorFlow and initializes its devices with the C++ banners it writes straight to
    file descriptor 2 (oneDNN, CUDA stubs, cuInit; `TF_CPP_MIN_LOG_LEVEL` does not silence
    them) sent to a scratch file, replayed only if the import fails. Python's own warnings and
    errors are unaffected afterwards; `--verbose` skips this."""
    import tempfile

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device scan, where cuInit complains
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _traceback_if(verbose):
    if verbose:
        traceback.print_exc(file=sys.stderr)
