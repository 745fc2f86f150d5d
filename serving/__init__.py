"""TF Serving deployment files and the REST/gRPC clients, installed as `roberta_tf.serving`.

`roberta_tf.serving.client` is the Python client API (its parts live in the sibling modules);
the deployment files (models.config, batching_parameters.txt, docker-compose.yml, k8s/) sit
beside it, and `roberta_tf.serving.batching` holds batching_parameters.txt's values for the
clients. serving/README.md describes both. The contract the clients speak and the request
tensors they send come from `roberta_tf.contract`, which the exporter shares; the clients
never import the exporter, nor it them.
"""
