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


@pytest.mark.parametrize("readme", ["README.md", "serving/README.md"])
def test_readme_signature_table_is_the_contract(readme):
    rows = {}
    for line in (REPO / readme).read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]) and cells[0].strip("`") in contract.CONTRACT:
            rows[cells[0].strip("`")] = [re.findall(r"`(\w+)`", cell) for cell in cells[1:]]
    assert list(rows) == list(contract.SIGNATURES)
    for name, (inputs, outputs) in rows.items():
        signature = contract.CONTRACT[name]
        assert inputs == [t.name for t in signature.inputs], name
        assert outputs == [t.name for t in signature.outputs], name
