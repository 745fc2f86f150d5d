"""Checkpoint converters (fairseq `model.pt`, Hugging Face directories) into roberta_tf presets.

Installed as `roberta_tf.converters`. Empty until the converters issue lands; the package
exists now so the install layout (see WORKSPACE.md) is fixed from the start.
"""
