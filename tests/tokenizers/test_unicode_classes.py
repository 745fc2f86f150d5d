"""The committed code-point class table equals what Hugging Face `tokenizers` matches today."""

import importlib.util

import numpy as np
import pytest

from conftest import REPO
from roberta_tf.tokenizers import unicode_class_ranges, unicode_classes


def test_table_matches_tokenizers_oniguruma():
    pytest.importorskip("tokenizers", reason="the `test` extra (Hugging Face tokenizers) is not installed")
    spec = importlib.util.spec_from_file_location("generate", REPO / "tools" / "generate_unicode_classes.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert tuple(generate.class_ranges()) == unicode_class_ranges.RANGES


def test_two_level_table_equals_flat_table():
    block_index, blocks = unicode_classes.two_level_table()
    flat = unicode_classes.class_array()
    cps = np.arange(unicode_classes.MAX_CODE_POINT + 1)
    looked_up = unicode_classes.lookup_classes(cps.astype(np.int32), block_index, blocks).numpy()
    np.testing.assert_array_equal(looked_up, flat)
    assert len(blocks) < 256 * 400  # a few hundred distinct blocks, not 4352


def test_known_classes():
    flat = unicode_classes.class_array()
    assert flat[ord("a")] == unicode_classes.LETTER and flat[ord("7")] == unicode_classes.NUMBER
    assert flat[0x3000] == unicode_classes.WHITESPACE and flat[0x200B] == unicode_classes.OTHER
    assert flat[ord("'")] == unicode_classes.OTHER and flat[0] == unicode_classes.OTHER
