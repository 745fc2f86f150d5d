"""Weight initialization shared by the encoder and the head (as keras-hub's RoBERTa)."""

import tf_keras as keras


def roberta_kernel_initializer(stddev=0.02):
    """Truncated normal, stddev 0.02: BERT/RoBERTa's initializer (fairseq's `init_bert_params`)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def fresh(initializer):
    """A new instance of `initializer`: an unseeded tf-keras initializer instance returns the
    SAME values on every call, so sharing one between weights would make them identical."""
    return initializer.__class__.from_config(initializer.get_config())
