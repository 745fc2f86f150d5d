"""TF Serving deployment files and the REST/gRPC client, installed as `roberta_tf.serving`.

Empty until the serving issue lands; the package exists now so the install layout (see
WORKSPACE.md) is fixed from the start.
"""
