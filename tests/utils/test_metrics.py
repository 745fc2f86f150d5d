"""roberta_tf.utils.metrics against hand-computed values (scikit-learn's definitions)."""

import pytest

from roberta_tf.utils import metrics


def test_report_matches_hand_computed_values():
    # true:      0 0 0 1 1 2 2 2 2     class 2 is never predicted; class 1 once right, once wrong
    # predicted: 0 0 1 1 0 0 1 0 0
    report = metrics.classification_report([0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 1, 0, 0, 1, 0, 0], ["a", "b", "c"])
    assert report["examples"] == 9
    assert report["accuracy"] == pytest.approx(3 / 9)
    a, b, c = report["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(2 / 6), pytest.approx(2 / 3), 3)
    assert (b["precision"], b["recall"], b["support"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2), 2)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 4)
    f1_a, f1_b = 2 * (1 / 3) * (2 / 3) / (1 / 3 + 2 / 3), 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)
    assert report["macro_f1"] == pytest.approx((f1_a + f1_b + 0.0) / 3)
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1, 0], [1, 1, 0], [3, 1, 0]]


def test_empty_input_and_shape_mismatch():
    assert metrics.classification_report([], [], ["a", "b"])["accuracy"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.confusion_matrix([0, 1], [0], 2)
