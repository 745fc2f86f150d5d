"""roberta_tf's benchmarks, run from the repository root as `python -m benchmarks.NAME [flags]`.

Benchmarks (each prints its table and writes NAME.json and NAME.png to --output_dir):
  tokenizer_benchmark, model_benchmark, conversion_benchmark, serving_benchmark,
  adversarial_benchmark, tflite_benchmark, predict_memory_benchmark, beam_benchmark,
  sentencepiece_benchmark, xlmr_large_benchmark.
Not benchmarks: sst2_classifier (trains and caches the small SST-2 classifier that
serving_benchmark's numerics part, tflite_benchmark and beam_benchmark use) and
sentencepiece_parity (a verification run: SentencePiece ids in every consumer on every corpus;
needs the test extra, since it reads the tests' models and corpora).

Shared modules (no benchmark imports another benchmark):
  report            machine record, load meter, tables, targets, JSON, plots;
  reference_models  geometries, the seeded PyTorch RobertaForSequenceClassification, ONNX
                    export and ONNX Runtime sessions;
  data              the shared data sets (SST-2) and batching;
  sentencepiece_models  the XNLI texts and the XLM-R-sized unigram model of the XLM-R benchmarks.

The package is not installed with roberta-tf; `-m` from the repository root puts it on the path.
"""

import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # the shared reference data, read by path, never copied
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"  # default --output_dir (git-ignored)
