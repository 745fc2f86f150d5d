"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests`.

With `--enable_model_warmup`, TF Serving replays these `PredictionLog` records against a new
model version before it reports the version AVAILABLE, so the first real requests do not pay
for graph initialisation, memory pools and (with XLA) compilation. One record per signature
and batch shape a server meets in practice: single texts, small and full client batches, and
one row at the truncation limit (the largest attention matrices).
"""

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from roberta_tf.contract import signatures as contract
from roberta_tf.contract.predict_request import grpc_predict_request

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving reads at most this many

# Representative English review-like sentences; lengths from 3 to about 40 tokens.
SENTENCES = (
    "Great movie.",
    "The plot was thin, but the acting carried it.",
    "I would not recommend this to anyone who values their time.",
    "A warm, funny and surprisingly moving story about a family that refuses to give up.",
    "It is the kind of film that stays with you long after the credits roll, for better or worse.",
    "Terrible.",
    "The soundtrack is wonderful; the dialogue, less so.",
    "An uneven but ambitious debut from a director worth watching.",
)


def _texts(count, offset=0):
    return [SENTENCES[(offset + i) % len(SENTENCES)] for i in range(count)]


def long_text(sequence_length):
    """A text of more than `sequence_length` tokens (every word is at least one token)."""
    words = " ".join(SENTENCES).split()
    return " ".join(words[i % len(words)] for i in range(sequence_length + 8))


def warmup_inputs(module):
    """[(signature name, {input name: numpy-like})]: the requests replayed at load, for each
    signature `module` serves (`module.SIGNATURES`).

    Args:
        module: a `TokenizerServingModule` or `ClassifierServingModule`; its
            `sequence_length` (one request reaches it) and its `tokenize` signature (which
            packs the `classify_token_ids` requests) are used.
    """
    requests = []
    for batch in (1, 8, 32):
        requests.append((contract.CLASSIFY, {"text": _texts(batch)}))
    requests.append((contract.CLASSIFY, {"text": [long_text(module.sequence_length)]}))
    for batch in (1, 8):
        requests.append((contract.CLASSIFY_PAIRS, {"text_a": _texts(batch), "text_b": _texts(batch, offset=3)}))
    requests.append((contract.TOKENIZE, {"text": _texts(4)}))
    requests.append((contract.TOKENIZE_PAIRS, {"text_a": _texts(4), "text_b": _texts(4, offset=1)}))
    if contract.CLASSIFY_TOKEN_IDS in module.SIGNATURES:
        for batch in (1, 8):
            packed = module.tokenize(tf.constant(_texts(batch, offset=2)))
            requests.append((contract.CLASSIFY_TOKEN_IDS, {name: np.asarray(value) for name, value in packed.items()}))
    return [(name, inputs) for name, inputs in requests if name in module.SIGNATURES]


def write_warmup_file(path, model_name, requests):
    """Writes `requests` as a TFRecord of `PredictionLog` protos, each `PredictRequest` built
    by the gRPC client's own builder with the contract's dtypes: what the server replays at
    load is exactly what a client sends."""
    if len(requests) > MAX_RECORDS:
        raise ValueError(f"TF Serving reads at most {MAX_RECORDS} warmup records; got {len(requests)}.")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            request = grpc_predict_request(
                model_name, signature_name, inputs, input_dtypes=contract.INPUT_DTYPES[signature_name]
            )
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_file(path):
    """The `PredictionLog` records of a warmup file (tests and export verification)."""
    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
