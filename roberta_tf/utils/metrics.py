"""Classification metrics from class ids (numpy only): what `roberta-tf evaluate` and the demo
report. Written here once rather than taken from scikit-learn, which roberta_tf does not
depend on; the definitions are scikit-learn's (a class never predicted has precision 0, a
class absent from the labels has recall 0; macro-F1 averages the per-class F1 over every
class of the model)."""

import numpy as np


def confusion_matrix(true_ids, predicted_ids, num_classes):
    """int64 [num_classes, num_classes]: row = true class, column = predicted class."""
    true_ids, predicted_ids = np.asarray(true_ids, np.int64), np.asarray(predicted_ids, np.int64)
    if true_ids.shape != predicted_ids.shape:
        raise ValueError(f"true and predicted ids differ in shape: {true_ids.shape} != {predicted_ids.shape}")
    matrix = np.zeros([num_classes, num_classes], np.int64)
    np.add.at(matrix, (true_ids, predicted_ids), 1)
    return matrix


def _ratio(numerator, denominator):
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0)


def classification_report(true_ids, predicted_ids, label_names):
    """Accuracy, macro-F1, per-class precision / recall / F1 / support and the confusion
    matrix, as a JSON-able dict."""
    matrix = confusion_matrix(true_ids, predicted_ids, len(label_names))
    correct = np.diag(matrix).astype(np.float64)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(correct, predicted), _ratio(correct, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = int(matrix.sum())
    return {
        "examples": total,
        "accuracy": float(correct.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()) if len(label_names) else 0.0,
        "per_class": [
            {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(label_names, precision, recall, f1, support)
        ],
        "confusion_matrix": {"labels": list(label_names), "rows_true_columns_predicted": matrix.tolist()},
    }
