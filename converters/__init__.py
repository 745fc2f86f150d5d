"""Checkpoint converters (fairseq, Hugging Face) into roberta_tf's named weights and presets.

Installed as `roberta_tf.converters`. Each converter maps a source's hyper-parameters to
`RobertaBackbone` arguments and its tensors (numpy, PyTorch `[out, in]` layout) to the
preset format's weight names (`RobertaTextClassifier.named_weights()`).
"""
