"""What an exported model promises and how a request to it is written, shared by the writers
of requests on both sides: the exporter (`roberta_tf.export`: its signatures implement the
contract, its warmup file logs requests) and the clients (`roberta_tf.serving`), which sit
beside each other and never import one another.

    signatures.py       the signatures, their inputs and outputs (names, dtypes, shapes): the
                        one written contract (pure Python; REST clients never import TF)
    tensors.py          Python values -> the numpy arrays a signature's inputs take, checked
    predict_request.py  a TF Serving `PredictRequest` for a signature call (imports TF)
"""
