"""Exporters: models and tokenizers as artifacts other runtimes load.

    serving_module.py         the serving graphs (strings in): `TokenizerServingModule`,
                              `ClassifierServingModule`, implementing `roberta_tf.contract`
    saved_model.py            TF Serving model versions BASE/NAME/N (atomic, verified, warmup)
    saved_model_tokenizer.py  the tokenizer alone as a SavedModel (the same tokenize signatures)
    warmup.py                 TF Serving warmup requests (`assets.extra/`)
    precision.py              float32 / bfloat16 encoder for exports
    provenance.py             a preset resolved for export; the metadata fields every export shares
    tflite_module.py          the TFLite graph: UTF-8 bytes (or packed ids) in, classification out
    tflite.py                 the TFLite model for apps (float32/float16/dynamic/int8, verified, atomic)
    tflite_metadata.py        writes the export's JSON into the .tflite's metadata table
    tflite_tokenizer.py       the tokenizer as a builtin-only TFLite model (UTF-8 bytes in)
    tflite_ops.py             lists a .tflite model's operators (builtin-only check)
"""
