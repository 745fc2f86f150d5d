"""The deployment files in serving/ parse as what TF Serving, docker compose and Kubernetes read.

models.config is parsed with TF Serving's own ModelServerConfig proto (from tensorflow-serving-api).
BatchingParameters is not in that pip package; its schema is rebuilt here from
tensorflow_serving/servables/tensorflow/session_bundle_config.proto (the fields used below,
names and types as there), so a misspelt field or a wrong value type still fails the test, as
it would fail the server at startup. YAML files are checked when PyYAML is installed (it is
not a dependency of roberta_tf)."""

import pathlib
import re

import pytest

SERVING = pathlib.Path(__file__).resolve().parents[2] / "serving"
MODEL_NAME = "roberta_classifier"

text_format = pytest.importorskip("google.protobuf.text_format")


def batching_parameters_class():
    """TF Serving's BatchingParameters message class: the real one if importable, else a rebuild."""
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
    except ImportError:
        pass
    else:
        return session_bundle_config_pb2.BatchingParameters
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name="session_bundle_config_replica.proto", package="tensorflow.serving",
                                              syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name, wrapper in ((1, "max_batch_size", "Int64Value"), (2, "batch_timeout_micros", "Int64Value"),
                                  (3, "max_enqueued_batches", "Int64Value"), (4, "num_batch_threads", "Int64Value"),
                                  (5, "thread_pool_name", "StringValue")):
        message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, label=field.LABEL_REPEATED, type=field.TYPE_INT64)
    message.field.add(name="pad_variable_length_inputs", number=7, label=field.LABEL_OPTIONAL, type=field.TYPE_BOOL)
    # Newer fields (TF Serving >= 2.3, large batch splitting); the text format matches by name,
    # so only the names and wrapper types matter here, not these field numbers.
    for number, name, wrapper in ((8, "enable_large_batch_splitting", "BoolValue"),
                                  (9, "max_execution_batch_size", "Int64Value")):
        message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE,
                          type_name=f".google.protobuf.{wrapper}")
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_models_config_parses_as_model_server_config():
    model_server_config_pb2 = pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2", reason="tensorflow-serving-api is not installed")
    config = text_format.Parse((SERVING / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == MODEL_NAME
    assert model.base_path == f"/models/{MODEL_NAME}"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_parameters_parse_and_are_consistent():
    parameters = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), batching_parameters_class()())
    # Requests up to max_batch_size rows are accepted and split into runs of at most
    # max_execution_batch_size rows (otherwise a request of 33 texts would be refused).
    assert parameters.enable_large_batch_splitting.value
    assert parameters.max_execution_batch_size.value == 32
    assert parameters.max_batch_size.value >= 1024
    assert 0 <= parameters.batch_timeout_micros.value <= 10_000  # the batching guide's CPU range
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= parameters.num_batch_threads.value
    sizes = list(parameters.allowed_batch_sizes)
    if sizes:  # the server refuses to start otherwise
        assert sizes == sorted(set(sizes)) and sizes[-1] == parameters.max_execution_batch_size.value
    # Padding fills with each tensor's first element: padding_mask would be padded with 1s.
    assert not parameters.pad_variable_length_inputs


def test_max_batch_size_admits_every_warmup_request():
    """A warmup request larger than max_batch_size fails under batching, and fails the model load."""
    import numpy as np

    from roberta_tf.export import warmup
    from roberta_tf.contract import signatures as contract

    class Module:  # what warmup_inputs reads of a ClassifierServingModule
        SIGNATURES = contract.SIGNATURES
        sequence_length = 16

        def tokenize(self, texts):
            return {"token_ids": np.zeros([len(texts), 4], np.int32), "padding_mask": np.ones([len(texts), 4], np.int32)}

    parameters = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), batching_parameters_class()())
    requests = [(name, {k: np.asarray(v) for k, v in inputs.items()}) for name, inputs in warmup.warmup_inputs(Module())]
    assert {signature for signature, _ in requests} == {
        "serving_default", "classify_pairs", "tokenize", "tokenize_pairs", "classify_token_ids"}
    for signature, inputs in requests:
        sizes = {len(value) for value in inputs.values()}
        assert len(sizes) == 1, (signature, sizes)  # batchable: one 0-th dimension per request
        assert sizes.pop() <= parameters.max_execution_batch_size.value, signature


def default_value(value):
    """`${VAR:-default}` (docker compose interpolation) -> default; anything else unchanged."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def yaml_documents(name):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (only needed for this check)")
    return list(yaml.safe_load_all((SERVING / name).read_text()))


def test_docker_compose_runs_the_model_server_with_the_config_files():
    (compose,) = yaml_documents("docker-compose.yml")
    service = compose["services"]["tf-serving"]
    assert re.fullmatch(r"\$\{TF_SERVING_IMAGE:-tensorflow/serving:\d+\.\d+\.\d+\}", service["image"])
    flags = dict(flag.split("=", 1) for flag in service["command"])
    assert flags["--port"] == "8500" and flags["--rest_api_port"] == "8501"
    assert flags["--enable_model_warmup"] == "true"
    assert default_value(flags["--enable_batching"]) == "true"  # on by default; the variable can turn it off
    mounts = {volume.rsplit(":", 2)[1] for volume in service["volumes"]}  # SRC:DST:ro, SRC may hold ":-"
    assert {flags["--model_config_file"], flags["--batching_parameters_file"], "/models"} <= mounts
    for local in ("./models.config", "./batching_parameters.txt"):
        assert (SERVING / local).exists()
    assert any(port.endswith(":8500") for port in service["ports"])
    assert any(port.endswith(":8501") for port in service["ports"])
    assert f"/v1/models/{MODEL_NAME}" in " ".join(service["healthcheck"]["test"])


def test_kubernetes_manifests_fit_together():
    (deployment,) = yaml_documents("k8s/deployment.yaml")
    (service,) = yaml_documents("k8s/service.yaml")
    (hpa,) = yaml_documents("k8s/hpa.yaml")
    assert (deployment["kind"], service["kind"], hpa["kind"]) == ("Deployment", "Service", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("tensorflow/serving:")
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilisation is relative to it
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert port_names == {"grpc": 8500, "http": 8501}
    assert {port["targetPort"] for port in service["spec"]["ports"]} == set(port_names)
    assert container["readinessProbe"]["httpGet"]["path"].startswith(f"/v1/models/{MODEL_NAME}")
    assert container["livenessProbe"]["httpGet"]["path"] == f"/v1/models/{MODEL_NAME}"
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    flags = dict(arg.split("=", 1) for arg in container["args"])
    assert flags["--model_config_file"].startswith(mounts["config"] + "/")
    assert flags["--batching_parameters_file"].startswith(mounts["config"] + "/")
    assert flags["--enable_batching"] == "true" and flags["--enable_model_warmup"] == "true"
    assert mounts["models"] == "/models"
