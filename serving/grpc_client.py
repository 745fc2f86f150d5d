"""`GrpcClient`: TF Serving's gRPC API (PredictionService.Predict, ModelService.GetModelStatus)."""

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from roberta_tf.contract import predict_request
from roberta_tf.contract import signatures as contract
from roberta_tf.serving import batching, grpc_proto
from roberta_tf.serving.classifier_methods import ClassifierMethods
from roberta_tf.serving.errors import RETRYABLE_CODES, ServingError, call_with_retries

# gRPC's default receive limit (4 MB) is below a large batch's logits or token ids; TF Serving
# itself accepts messages up to 2 GB.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class GrpcClient(ClassifierMethods):
    """Calls a TF Serving gRPC endpoint (port 8500): `classify`, `classify_pairs`, `tokenize`
    (`tokenize`/`tokenize_pairs`), `classify_token_ids`, `model_status`, `model_metadata`, and the
    generic `predict`.

    Args:
        target: "host:port", e.g. "localhost:8500".
        model_name: the served model's name.
        version: a model version number, or None for the latest loaded one.
        timeout: deadline in seconds for each attempt; an expired deadline is not retried.
        retries: extra attempts after UNAVAILABLE (server unreachable, restarting, or its batching
            queue full) or RESOURCE_EXHAUSTED (e.g. a request's run timeout passed in the queue).
        backoff: seconds before the first retry; doubles on each further one.
        max_message_bytes: send and receive limit of the channel.
        credentials: `grpc.ChannelCredentials` for TLS, or None for a plaintext channel.
        max_request_rows: the most rows one request carries; the methods split larger calls
            (default `batching.MAX_REQUEST_ROWS`, what `batching_parameters.txt` admits).

    The channel is opened lazily by gRPC; `close()` (or a `with` block) releases it.
    """

    def __init__(self, target, model_name=contract.DEFAULT_MODEL_NAME, version=None, timeout=10.0, retries=3,
                 backoff=0.2, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, credentials=None,
                 max_request_rows=batching.MAX_REQUEST_ROWS):
        super().__init__(max_request_rows)
        self.target = target
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        prediction_service = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._predict = prediction_service.Predict
        self._get_model_metadata = prediction_service.GetModelMetadata
        self._get_model_status = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus

    def predict(self, signature_name, inputs, input_dtypes=None, output_dtypes=None):
        """Sends one Predict RPC; returns dict output name -> array (strings as bytes).

        `input_dtypes` (dict name -> TF dtype name) defaults to the roberta_tf contract for its
        signatures; `output_dtypes` is unused (gRPC tensors carry their dtype).
        """
        input_dtypes = input_dtypes or contract.INPUT_DTYPES.get(signature_name)
        request = predict_request.grpc_predict_request(self.model_name, signature_name, inputs, self.version, input_dtypes)
        return grpc_proto.parse_grpc_response(self._call(self._predict, request, signature_name))

    def model_status(self):
        """GetModelStatus: list of {"version", "state", "error_code", "error_message"}.

        A model is ready when some version has state "AVAILABLE".
        """
        request = grpc_proto.grpc_model_status_request(self.model_name, self.version)
        return grpc_proto.parse_grpc_model_status(self._call(self._get_model_status, request, None))

    def model_metadata(self):
        """GetModelMetadata: dict signature -> {"inputs", "outputs"}: name -> {"dtype", "shape"}.

        Dtypes are TF's enum names ("DT_FLOAT"), shapes lists with None for unknown dimensions.
        """
        request = grpc_proto.grpc_model_metadata_request(self.model_name, self.version)
        return grpc_proto.parse_grpc_model_metadata(self._call(self._get_model_metadata, request, None))

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _call(self, method, request, signature_name):
        def attempt():
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as rpc_error:
                code = rpc_error.code()
                raise ServingError(rpc_error.details() or str(rpc_error), code=code.name,
                                   retryable=code.name in RETRYABLE_CODES, endpoint=self.target,
                                   model=self.model_name, signature=signature_name) from None

        return call_with_retries(attempt, retries=self.retries, backoff=self.backoff)
