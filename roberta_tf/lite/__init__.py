"""Running the exported TFLite models from Python, without TensorFlow: `ai_edge_litert` and
numpy only (what a Python app on a device would install).

    text_classifier.py   `TextClassifier(path)`: classify(texts), classify_pairs(a, b)
    metadata.py          `read_tflite_metadata(path)`: the export's metadata in the flatbuffer
"""

from roberta_tf.lite.metadata import read_tflite_metadata
from roberta_tf.lite.text_classifier import Classification, TextClassifier

__all__ = ["Classification", "TextClassifier", "read_tflite_metadata"]
