"""The `roberta-tf` command line: `roberta-tf SUBCOMMAND [flags]`.

`main.py` holds the subcommand registry and the entry point (`run`), `command.py` the shared
machinery (per-subcommand flag parsing, help, errors), and each subcommand lives in its own
module (`tokenize.py`, ...). Importing this package does not import TensorFlow.
"""
