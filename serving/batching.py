"""The server's batching parameters (`batching_parameters.txt`) as constants, and the largest
request the clients send in one call. A test holds the file equal to this module.

How TF Serving admits a request while batching is on (TF Serving 2.19.0; the queue is
TensorFlow's `shared_batch_scheduler.h`, `Queue::ValidateBatchTaskQueueCapacity`):

- more rows than `max_batch_size`: INVALID_ARGUMENT (HTTP 400), at once;
- more rows than the queue's free space, `(max_enqueued_batches - queued batches) *
  max_execution_batch_size` plus the room left in the open batch: UNAVAILABLE (HTTP 503). The
  request is refused whole, not split; with `rows_waiting` rows already queued (not yet on a
  batch thread) the free space is `QUEUE_ROWS - rows_waiting`.

So the clients send at most MAX_REQUEST_ROWS rows per call, half the queue: such a request is
accepted while up to TOLERATED_WAITING_ROWS other rows wait. Larger calls are split into
consecutive requests (`classifier_methods.py`). The values, and why: `batching_parameters.txt`.
"""

MAX_BATCH_SIZE = 96  # rows one request may hold
MAX_EXECUTION_BATCH_SIZE = 32  # rows one graph run may hold
MAX_ENQUEUED_BATCHES = 6
NUM_BATCH_THREADS = 2
BATCH_TIMEOUT_MICROS = 2000
ENABLE_LARGE_BATCH_SPLITTING = True
PAD_VARIABLE_LENGTH_INPUTS = False

# Rows an idle queue accepts: 192.
QUEUE_ROWS = MAX_ENQUEUED_BATCHES * MAX_EXECUTION_BATCH_SIZE
# The largest request the clients send in one call: 96.
MAX_REQUEST_ROWS = min(MAX_BATCH_SIZE, QUEUE_ROWS // 2)
# Rows that may wait in the queue while a MAX_REQUEST_ROWS request is still accepted: 96.
TOLERATED_WAITING_ROWS = QUEUE_ROWS - MAX_REQUEST_ROWS
