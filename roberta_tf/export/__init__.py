"""Exporters: models and tokenizers as artifacts other runtimes load.

    serving_module.py         the serving graphs (strings in): `TokenizerServingModule`,
                              `ClassifierServingModule`, implementing `roberta_tf.contract`
    saved_model.py            TF Serving model versions BASE/NAME/N (atomic, verified, warmup)
    saved_model_tokenizer.py  the tokenizer alone as a SavedModel (the same tokenize signatures)
    warmup.py                 TF Serving warmup requests (`assets.extra/`)
    precision.py              float32 / bfloat16 encoder for exports
    tflite_tokenizer.py       the tokenizer as a builtin-only TFLite model (UTF-8 bytes in)
    tflite_ops.py             lists a .tflite model's operators (builtin-only check)
"""
