"""The demo's checks of its command line, before any work (and without TensorFlow): the output
directory is new, empty or a previous demo output; the data directory holds SST-2."""

import json
import pathlib

from roberta_tf.demo import data

FORMAT = "roberta_tf.demo/1"
DEMO_FILE = "demo.json"


class DemoError(Exception):
    """A problem the user fixes (the output directory, the data); one line."""


class DataMissing(DemoError):
    """The SST-2 files are not where the demo looked."""


def check_inputs(output, data_dir):
    """Raises DemoError (DataMissing for the data) unless the demo can run."""
    check_output_dir(pathlib.Path(output).expanduser().absolute())
    missing = data.missing_files(data_dir)
    if missing:
        raise DataMissing(f"SST-2 not found: no {', '.join(missing)}")


def check_output_dir(output):
    """Refuses an output that is a file, or a non-empty directory that is not a previous demo
    output (a demo.json of this format), before any work."""
    if output.exists() and not output.is_dir():
        raise DemoError(f"--output {output} is a file; give a directory")
    if output.is_dir() and any(output.iterdir()) and not is_demo_output(output):
        raise DemoError(f"--output {output} is not empty and is not a roberta-tf demo output (no {DEMO_FILE}); "
                        "choose another directory")


def is_demo_output(directory):
    try:
        return json.loads((pathlib.Path(directory) / DEMO_FILE).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False
