"""A model of the queue TF Serving's batching puts requests in, to check what it admits.

TF Serving 2.19.0 (model_servers/server.cc with --enable_batching) queues each signature's
requests in TensorFlow's `SharedBatchScheduler` (tensorflow/core/kernels/batching_util/
shared_batch_scheduler.h, in the TensorFlow TF Serving 2.19.0 builds against); with
`enable_large_batch_splitting` the queue's options come from `BatchingParameters` as
`input_batch_size_limit = max_batch_size` and `max_execution_batch_size`
(servables/tensorflow/bundle_factory_util.h, GetQueueOptions). The rules modelled, from
shared_batch_scheduler.h:

- `Queue::Queue`: the queue starts with one open, empty batch; the last batch is always open.
- `Queue::ValidateBatchTaskQueueCapacity`: a request of more rows than `input_batch_size_limit`
  is INVALID_ARGUMENT; one of more rows than `SchedulingCapacityInternal()` is UNAVAILABLE
  ("The batch scheduling queue to which this task was submitted is full"), refused whole.
- `Queue::SchedulingCapacityInternal`: `(max_enqueued_batches - number of batches) *
  max_execution_batch_size + (max_execution_batch_size - rows in the open batch)`.
- `Queue::ScheduleWithoutOrEagerSplitImpl` with `SplitInputBatchIntoSubtasks`: a request that
  does not fit the open batch is split into a piece that fills it, then pieces of
  `max_execution_batch_size`; a piece that does not fit closes the open batch (StartNewBatch).
- `Queue::ScheduleBatch`: a free batch thread takes the front batch (closing the open one first
  when it is the only one); a batch on a thread has left the queue.
"""


class SimulatedQueue:
    def __init__(self, max_batch_size, max_execution_batch_size, max_enqueued_batches):
        self.max_batch_size = max_batch_size
        self.max_execution_batch_size = max_execution_batch_size
        self.max_enqueued_batches = max_enqueued_batches
        self.batches = [0]  # rows per queued batch; the last one is open

    def capacity(self):
        execution = self.max_execution_batch_size
        return (self.max_enqueued_batches - len(self.batches)) * execution + (execution - self.batches[-1])

    def schedule(self, rows):
        """"OK" (the request is queued), or the status TF Serving answers instead."""
        if rows > self.max_batch_size:
            return "INVALID_ARGUMENT"
        if rows > self.capacity():
            return "UNAVAILABLE"
        execution = self.max_execution_batch_size
        room = execution - self.batches[-1]
        if rows <= room:
            pieces = [rows]
        else:
            full, last = divmod(rows - room, execution)
            pieces = [room] * (room > 0) + [execution] * full + [last] * (last > 0)
        for piece in pieces:
            if self.batches[-1] + piece > execution:
                self.batches.append(0)
            self.batches[-1] += piece
        return "OK"

    def run_batch(self):
        """A batch thread takes the front batch (if there is any work)."""
        if len(self.batches) == 1:
            if self.batches[0] == 0:
                return
            self.batches.append(0)
        self.batches.pop(0)

    def waiting_rows(self):
        return sum(self.batches)
