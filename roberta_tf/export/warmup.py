"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests`.

With `--enable_model_warmup`, TF Serving replays these `PredictionLog` records against a new
model version before it reports the version AVAILABLE, so the first real requests do not pay
for graph initialisation, memory pools and (with XLA) compilation. One record per signature
and batch shape a server meets in practice: single texts, small and full client batches, and
one row at the truncation limit (the largest attention matrices).
"""

import tensorflow as tf

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


def _long_text(sequence_length):
    """A text of more than `sequence_length` tokens (every word is at least one token)."""
    words = " ".join(SENTENCES).split()
    return " ".join(words[i % len(words)] for i in range(sequence_length + 8))


def warmup_inputs(sequence_length, token_ids_for):
    """[(signature name, {input name: numpy-like})], the requests replayed at load.

    Args:
        sequence_length: the model's truncation limit (one request reaches it).
        token_ids_for: texts -> (token_ids, padding_mask) as `tokenize` returns them, for the
            `classify_token_ids` requests.
    """
    requests = []
    for batch in (1, 8, 32):
        requests.append(("serving_default", {"text": _texts(batch)}))
    requests.append(("serving_default", {"text": [_long_text(sequence_length)]}))
    for batch in (1, 8):
        requests.append(("classify_pairs", {"text_a": _texts(batch), "text_b": _texts(batch, offset=3)}))
    requests.append(("tokenize", {"text": _texts(4)}))
    requests.append(("tokenize_pairs", {"text_a": _texts(4), "text_b": _texts(4, offset=1)}))
    for batch in (1, 8):
        token_ids, padding_mask = token_ids_for(_texts(batch, offset=2))
        requests.append(("classify_token_ids", {"token_ids": token_ids, "padding_mask": padding_mask}))
    return requests


def write_warmup_file(path, model_name, requests, input_dtypes):
    """Writes `requests` as a TFRecord of `PredictionLog` protos (tensorflow-serving-api).

    `input_dtypes`: {signature: {input: dtype name}}, so each tensor has the signature's dtype."""
    from tensorflow_serving.apis import prediction_log_pb2

    from roberta_tf.serving.client import grpc_predict_request

    if len(requests) > MAX_RECORDS:
        raise ValueError(f"TF Serving reads at most {MAX_RECORDS} warmup records; got {len(requests)}.")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            request = grpc_predict_request(model_name, signature_name, inputs, input_dtypes=input_dtypes[signature_name])
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_file(path):
    """The `PredictionLog` records of a warmup file (tests and export verification)."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
