"""Exporters: the tokenizer as a builtin-only TFLite model and as a string-signature SavedModel."""
