"""TF Serving deployment files and the REST/gRPC client, installed as `roberta_tf.serving`.

`roberta_tf.serving.client` is the Python client API (its parts live in the sibling modules);
the deployment files (models.config, batching_parameters.txt, docker-compose.yml, k8s/) sit
beside it. serving/README.md describes both. The modules are flat, not a `client/` subpackage,
because pyproject.toml lists packages explicitly: a subpackage would be missing from wheels.
"""
