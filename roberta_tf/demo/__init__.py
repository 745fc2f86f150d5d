"""`roberta-tf demo` as library code: a small SST-2 classifier trained from scratch with
roberta_tf's own `fit`, exported in every form and scored (the CLI, `roberta_tf/cli/demo.py`,
only parses flags and prints).

    recipes.py          the default and --quick recipes (geometry, data, schedule), TF-free
    data.py             GLUE SST-2 files: reading, the default folder, seeded samples
    output.py           the command-line checks (output directory, data), TF-free
    training_record.py  training.json and the cache check on it, TF-free
    training.py         the recipe machinery: bucketed tf.data, AdamW schedule, fit with a
                        progress bar, the checked atomic preset save (also used by
                        benchmarks/sst2_classifier.py)
    scoring.py          accuracy, agreement with the in-process model, batch-1 latency, size
                        (through `roberta_tf.artifacts`); the agreement targets
    pipeline.py         the run: cache or train, export, score, demo.json
    report.py           what is printed: the model statement, tables, serving commands

Submodules are imported explicitly; importing this package loads nothing (the TF-free ones
answer the CLI's checks before TensorFlow loads).
"""
