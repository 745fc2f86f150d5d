"""The deployment files in serving/ parse as what TF Serving, docker compose and Kubernetes read,
and follow the rules TF Serving 2.19.0's source sets (each test names the file and function).

models.config is parsed with TF Serving's own ModelServerConfig proto (from tensorflow-serving-api).
BatchingParameters is not in that pip package; its schema is rebuilt here from
tensorflow_serving/servables/tensorflow/session_bundle_config.proto (the fields used below,
names and types as there), so a misspelt field or a wrong value type still fails the test, as
it would fail the server at startup. YAML files are checked when PyYAML is installed (it is
not a dependency of roberta_tf). The server's command lines are rendered the way docker compose
and Kubernetes expand them and then run through the start-up script with /bin/sh, a stub
standing in for tensorflow_model_server."""

import pathlib
import random
import re
import subprocess

import pytest
from simulated_queue import SimulatedQueue

from roberta_tf.serving import batching

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


def batching_parameters():
    return text_format.Parse((SERVING / "batching_parameters.txt").read_text(), batching_parameters_class()())


def test_batching_parameters_equal_the_batching_module():
    """The file the server reads and the constants the clients read (serving/batching.py) agree."""
    parameters = batching_parameters()
    fields = {field.name: (value.value if hasattr(value, "value") else value) for field, value in parameters.ListFields()}
    assert fields == {
        "max_batch_size": batching.MAX_BATCH_SIZE,
        "max_execution_batch_size": batching.MAX_EXECUTION_BATCH_SIZE,
        "max_enqueued_batches": batching.MAX_ENQUEUED_BATCHES,
        "num_batch_threads": batching.NUM_BATCH_THREADS,
        "batch_timeout_micros": batching.BATCH_TIMEOUT_MICROS,
        "enable_large_batch_splitting": batching.ENABLE_LARGE_BATCH_SPLITTING,
    }
    # A proto3 bool at its default is not listed: padding must be off (checked below).
    assert parameters.pad_variable_length_inputs == batching.PAD_VARIABLE_LENGTH_INPUTS is False


def test_batching_parameters_parse_and_are_consistent():
    parameters = batching_parameters()
    # Requests up to max_batch_size rows are accepted and split into runs of at most
    # max_execution_batch_size rows (otherwise a request of 33 texts would be refused).
    assert parameters.enable_large_batch_splitting.value
    assert parameters.max_execution_batch_size.value == 32
    # shared_batch_scheduler.h, SharedBatchScheduler::AddQueue: with splitting, input_batch_size_limit
    # (max_batch_size) must be >= max_execution_batch_size, and max_enqueued_batches positive.
    assert parameters.max_batch_size.value >= parameters.max_execution_batch_size.value
    assert parameters.max_enqueued_batches.value > 0
    assert 0 <= parameters.batch_timeout_micros.value <= 10_000  # the batching guide's CPU range
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= parameters.num_batch_threads.value
    sizes = list(parameters.allowed_batch_sizes)
    if sizes:  # the server refuses to start otherwise
        assert sizes == sorted(set(sizes)) and sizes[-1] == parameters.max_execution_batch_size.value
    # Padding fills with each tensor's first element: padding_mask would be padded with 1s.
    assert not parameters.pad_variable_length_inputs


# ---------------------------------------------------------------------------------------------
# What the queue admits (tests/serving/simulated_queue.py models shared_batch_scheduler.h).


def configured_queue():
    return SimulatedQueue(batching.MAX_BATCH_SIZE, batching.MAX_EXECUTION_BATCH_SIZE, batching.MAX_ENQUEUED_BATCHES)


def test_the_largest_request_is_admitted_idle_and_under_the_stated_load():
    """shared_batch_scheduler.h, Queue::ValidateBatchTaskQueueCapacity: the clients' largest request
    (batching.MAX_REQUEST_ROWS, the documented limit) fits an idle queue, and still fits while
    TOLERATED_WAITING_ROWS rows (the load the README states) wait; one row more and it is refused."""
    assert batching.MAX_REQUEST_ROWS == 96  # the number the READMEs give
    assert batching.TOLERATED_WAITING_ROWS >= batching.MAX_REQUEST_ROWS  # room for another such request
    assert configured_queue().schedule(batching.MAX_REQUEST_ROWS) == "OK"
    queue = configured_queue()
    for rows in (7, 33, 1, batching.TOLERATED_WAITING_ROWS - 41):  # requests of assorted sizes
        assert queue.schedule(rows) == "OK"
    assert queue.waiting_rows() == batching.TOLERATED_WAITING_ROWS
    assert queue.capacity() >= batching.MAX_REQUEST_ROWS
    assert queue.schedule(1) == "OK"
    assert queue.schedule(batching.MAX_REQUEST_ROWS) == "UNAVAILABLE"


def test_the_admission_rule_the_readme_states():
    """Free space = QUEUE_ROWS - rows waiting, whatever sizes arrived and whatever the two batch
    threads took (batches on a thread have left the queue: Queue::ScheduleBatch)."""
    generator = random.Random(0)
    queue = configured_queue()
    for _ in range(5000):
        if generator.random() < 0.4:
            queue.run_batch()
        else:
            rows = generator.randint(1, batching.MAX_REQUEST_ROWS)
            expected = "OK" if rows <= batching.QUEUE_ROWS - queue.waiting_rows() else "UNAVAILABLE"
            assert queue.schedule(rows) == expected, (rows, queue.batches)
        assert queue.capacity() == batching.QUEUE_ROWS - queue.waiting_rows()


def test_larger_requests_are_invalid_and_the_old_parameters_refused_the_documented_size():
    """Over max_batch_size: INVALID_ARGUMENT at once (ValidateBatchTaskQueueCapacity). The previous
    parameters (max_batch_size 1024, 4 x 32) promised 1,024 rows but an idle queue held 128."""
    assert configured_queue().schedule(batching.MAX_BATCH_SIZE + 1) == "INVALID_ARGUMENT"
    old = SimulatedQueue(max_batch_size=1024, max_execution_batch_size=32, max_enqueued_batches=4)
    assert old.capacity() == 128
    assert old.schedule(1024) == old.schedule(129) == "UNAVAILABLE"


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

    parameters = batching_parameters()
    requests = [(name, {k: np.asarray(v) for k, v in inputs.items()}) for name, inputs in warmup.warmup_inputs(Module())]
    assert {signature for signature, _ in requests} == {
        "serving_default", "classify_pairs", "tokenize", "tokenize_pairs", "classify_token_ids"}
    for signature, inputs in requests:
        sizes = {len(value) for value in inputs.values()}
        assert len(sizes) == 1, (signature, sizes)  # batchable: one 0-th dimension per request
        assert sizes.pop() <= parameters.max_execution_batch_size.value, signature


def yaml_documents(name):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (only needed for this check)")
    return list(yaml.safe_load_all((SERVING / name).read_text()))


# ---------------------------------------------------------------------------------------------
# The server's effective command line, batching on and off.

# tensorflow_serving/model_servers/main.cc (2.19.0), main(): the flags the model server defines.
SERVER_FLAGS = frozenset("""
    port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms
    rest_api_enable_cors_support enable_batching allow_version_labels_for_unavailable_models
    batching_parameters_file enable_per_model_batching_parameters model_config_file
    model_config_file_poll_wait_seconds model_name model_base_path num_load_threads
    num_unload_threads max_num_load_retries load_retry_interval_micros
    file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism
    tensorflow_session_config_file tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism
    use_alts_credentials ssl_config_file platform_config_file per_process_gpu_memory_fraction
    saved_model_tags grpc_channel_arguments grpc_max_threads enable_model_warmup
    num_request_iterations_for_warmup version monitoring_config_file
    remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools
    num_tflite_interpreters_per_pool enable_signature_method_name_check xla_cpu_compilation_enabled
    xla_gpu_compilation_enabled enable_profiler thread_pool_factory_config_file mixed_precision
    skip_initialize_tpu enable_grpc_healthcheck_service enable_serialization_as_tensor_content
""".split())


def start_up_error(argv):
    """Why TF Serving 2.19.0 would refuse (or silently ignore part of) this command line, or None.

    main.cc, main(): an argument that is not a defined `--flag=value` is only printed as
    "unknown argument" and otherwise ignored, so it counts as an error here. server.cc,
    Server::BuildAndStart: a non-empty --batching_parameters_file without --enable_batching=true
    is InvalidArgument ("batching_parameters_file is set without setting ... enable_batching to
    true"), and main.cc exits with "Failed to start server".
    """
    flags = {}
    for arg in argv:
        name, equals, value = arg.partition("=")
        if not (name.startswith("--") and equals and name[2:] in SERVER_FLAGS):
            return f"unknown argument: {arg}"
        flags[name[2:]] = value
    if flags.get("batching_parameters_file") and flags.get("enable_batching") != "true":
        return "batching_parameters_file is set without setting enable_batching to true"
    return None


def test_start_up_rule_catches_the_batching_file_without_batching():
    """The command docker-compose.yml used to give with TF_SERVING_ENABLE_BATCHING=false."""
    old = ["--port=8500", "--enable_batching=false", "--batching_parameters_file=/config/batching_parameters.txt"]
    assert "enable_batching to true" in start_up_error(old)
    assert "enable_batching to true" in start_up_error(old[:1] + old[2:])  # the flag's default is false
    assert start_up_error(["--port=8500", "--enable_batching=true", old[2]]) is None
    assert start_up_error(["--enable_batchin=true"]) == "unknown argument: --enable_batchin=true"


def compose_interpolate(value, env):
    """docker compose's interpolation of one string: `$$` -> `$`; `${NAME:-default}` (default when
    unset or empty), `${NAME}` and `$NAME` -> the host environment's value."""
    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        if match.group("default") is not None and not env.get(name):
            return match.group("default")
        return env.get(name, "")

    return re.sub(r"\$\$|\$\{(?P<braced>\w+)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>\w+)", replace, value)


def kubernetes_expand(value, env):
    """Kubernetes' expansion of a container's command and args (its forked golang expansion
    package): `$$` -> `$`, `$(NAME)` -> the container's variable when defined, else kept."""
    return re.sub(r"\$\$|\$\((\w+)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def run_entrypoint(argv, env, tmp_path):
    """Runs the container's argv with /bin/sh and a `tensorflow_model_server` stub on PATH;
    returns (the arguments the server would get, or None, stderr)."""
    stub = tmp_path / "tensorflow_model_server"
    stub.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
    stub.chmod(0o755)
    assert argv[0] == "/bin/sh", argv
    result = subprocess.run(argv, env={**env, "PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, timeout=30)
    if result.returncode:
        return None, result.stderr.decode()
    return result.stdout.decode().split("\0")[:-1], result.stderr.decode()


def compose_command(host_env, tmp_path):
    """docker compose's tf-serving container, started with `host_env`: (server argv, service)."""
    (compose,) = yaml_documents("docker-compose.yml")
    service = compose["services"]["tf-serving"]
    argv = [compose_interpolate(part, host_env) for part in service["entrypoint"] + service["command"]]
    container_env = {name: compose_interpolate(str(value), host_env) for name, value in service["environment"].items()}
    return run_entrypoint(argv, container_env, tmp_path), service


def kubernetes_command(batching, tmp_path):
    """The k8s container's server argv with TF_SERVING_ENABLE_BATCHING set to `batching` (None:
    as the manifest sets it)."""
    (deployment,) = yaml_documents("k8s/deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    if batching is not None:
        env["TF_SERVING_ENABLE_BATCHING"] = batching
    argv = [kubernetes_expand(part, env) for part in container["command"] + container["args"]]
    return run_entrypoint(argv, env, tmp_path), container


def check_effective_command(argv, batching_on):
    assert argv is not None
    assert start_up_error(argv) is None, argv
    flags = dict(arg[2:].split("=", 1) for arg in argv)
    assert flags["enable_batching"] == ("true" if batching_on else "false")
    assert ("batching_parameters_file" in flags) == batching_on
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    assert flags["enable_model_warmup"] == "true"
    return flags


@pytest.mark.parametrize("host_env,batching_on", [({}, True), ({"TF_SERVING_ENABLE_BATCHING": "true"}, True),
                                                  ({"TF_SERVING_ENABLE_BATCHING": "false"}, False)],
                         ids=["default", "on", "off"])
def test_docker_compose_starts_with_batching_on_and_off(tmp_path, host_env, batching_on):
    """The command the container runs, for each setting of TF_SERVING_ENABLE_BATCHING, passes
    TF Serving 2.19.0's start-up checks (`start_up_error`: server.cc, Server::BuildAndStart)."""
    (argv, _), service = compose_command(host_env, tmp_path)
    flags = check_effective_command(argv, batching_on)
    mounts = {volume.rsplit(":", 2)[1] for volume in service["volumes"]}  # SRC:DST:ro, SRC may hold ":-"
    assert {flags["model_config_file"], flags.get("batching_parameters_file", "/models"), "/models"} <= mounts


@pytest.mark.parametrize("batching,batching_on", [(None, True), ("false", False)], ids=["as-written", "off"])
def test_kubernetes_starts_with_batching_on_and_off(tmp_path, batching, batching_on):
    """As written and with the variable set to "false", as the manifest's comment says to turn
    batching off: both pass `start_up_error` (server.cc, Server::BuildAndStart)."""
    (argv, _), container = kubernetes_command(batching, tmp_path)
    flags = check_effective_command(argv, batching_on)
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert flags["model_config_file"].startswith(mounts["config"] + "/")
    if batching_on:
        assert flags["batching_parameters_file"].startswith(mounts["config"] + "/")


def test_a_misspelt_batching_switch_stops_the_container_with_a_message(tmp_path):
    (argv, stderr), _ = compose_command({"TF_SERVING_ENABLE_BATCHING": "no"}, tmp_path)
    assert argv is None and "TF_SERVING_ENABLE_BATCHING must be true or false, not 'no'" in stderr
    (argv, stderr), _ = kubernetes_command("False", tmp_path)
    assert argv is None and "not 'False'" in stderr


def test_docker_compose_runs_the_model_server_with_the_config_files():
    (compose,) = yaml_documents("docker-compose.yml")
    service = compose["services"]["tf-serving"]
    assert re.fullmatch(r"\$\{TF_SERVING_IMAGE:-tensorflow/serving:\d+\.\d+\.\d+\}", service["image"])
    for local in ("./models.config", "./batching_parameters.txt"):
        assert (SERVING / local).exists()
    assert any(port.endswith(":8500") for port in service["ports"])
    assert any(port.endswith(":8501") for port in service["ports"])
    assert f"/v1/models/{MODEL_NAME}" in " ".join(service["healthcheck"]["test"])


def memory_bytes(quantity):
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity).groups()
    return int(number) * 1024 ** {None: 0, "Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4}[unit]


def test_kubernetes_memory_holds_two_roberta_base_versions():
    """During a version switch the old and new versions are both loaded (AvailabilityPreservingPolicy,
    set in server.cc). Measured for one roberta-base export loaded like TF Serving does, in TF 2.21:
    +0.95 GB resident; a run of 32 texts at 512 tokens ~0.9 GB more, two batch threads; the
    server itself estimated at 0.3 GB (serving/k8s/deployment.yaml states the numbers)."""
    (deployment,) = yaml_documents("k8s/deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    limit = memory_bytes(container["resources"]["limits"]["memory"])
    assert limit >= 2 * 0.95e9 + 2 * 0.9e9 + 0.3e9
    assert memory_bytes(container["resources"]["requests"]["memory"]) <= limit


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
    assert mounts["models"] == "/models"
