"""The in-graph RoBERTa tokenizer: byte-level BPE on integer TF ops (see byte_level_bpe.py)."""
