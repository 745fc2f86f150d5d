"""Documentation that restates the code is held to it: the package stack in WORKSPACE.md and
the signature tables in README.md and serving/README.md."""

import re

import pytest

from roberta_tf.contract import signatures as contract
from test_import_layers import LAYERS, REPO


def _code_block_after(text, marker):
    after = text[text.index(marker):]
    return after.split("```")[1].strip("\n").splitlines()


def test_workspace_draws_the_tested_package_stack():
    lines = _code_block_after((REPO / "WORKSPACE.md").read_text(encoding="utf-8"), "<!-- package-stack")
    drawn = [tuple(line[:21].split()) for line in reversed(lines)]  # names sit in the first 21 columns
    assert drawn == list(LAYERS)


def signature_tables(readme):
    """{section title: {signature name: [input names, output names]}} of the README's
    three-column signature tables (first cell a `name`)."""
    tables, section = {}, ""
    for line in (REPO / readme).read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            tables.setdefault(section, {})[cells[0].strip("`")] = [re.findall(r"`(\w+)`", cell) for cell in cells[1:]]
    return tables


def assert_table_is(rows, table, names):
    assert list(rows) == list(names)
    for name, (inputs, outputs) in rows.items():
        assert inputs == [t.name for t in table[name].inputs], name
        assert outputs == [t.name for t in table[name].outputs], name


@pytest.mark.parametrize("readme", ["README.md", "serving/README.md"])
def test_readme_signature_table_is_the_contract(readme):
    tables = signature_tables(readme)
    serving = {name: row for title, rows in tables.items() if "TFLite" not in title
               for name, row in rows.items() if name in contract.CONTRACT}
    assert_table_is(serving, contract.CONTRACT, contract.SIGNATURES)


def test_readme_tflite_table_is_the_tflite_contract():
    rows = signature_tables("README.md")["TFLite for apps"]
    assert_table_is(rows, contract.TFLITE_CONTRACT, contract.TFLITE_CONTRACT)
