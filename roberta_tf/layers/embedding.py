"""`RobertaEmbedding`: token embeddings plus fairseq's learned positions (padding-aware)."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers import initializers

# fairseq's Dictionary always puts <pad> at index 1; learned positions are offset by it:
# pads use row 1, real tokens rows 2, 3, ... (`fairseq.utils.make_positions`).
PADDING_INDEX = 1


def position_ids(padding_mask):
    """fairseq's `make_positions`, computed from the padding mask instead of `token != <pad>`.

    `cumsum(mask) * mask + padding_index`: the i-th real token of a row gets 1 + i + 1, every
    pad gets `padding_index`, wherever the pads are. A text's positions therefore do not
    depend on how much padding follows it (or on left padding), and the `<pad>` *token* may
    appear inside the text without being treated as padding (keras-hub's all-ones example).
    """
    mask = tf.cast(padding_mask, tf.int32)
    return tf.cumsum(mask, axis=1) * mask + PADDING_INDEX


@keras.saving.register_keras_serializable(package="roberta_tf")
class RobertaEmbedding(keras.layers.Layer):
    """`token_embedding[token_ids] + position_embedding[position_ids(padding_mask)]`, flattened.

    Args:
        vocabulary_size: rows of the token embedding.
        max_sequence_length: the longest packed sequence; the position table has
            `max_sequence_length + PADDING_INDEX + 1` rows (514 for RoBERTa's 512), as fairseq's
            `embed_positions` and Hugging Face's `max_position_embeddings`.
        embedding_dim: width of both tables.

    Call arguments:
        token_ids: int [batch, length]; padding_mask: bool or int [batch, length].
    """

    def __init__(self, vocabulary_size, max_sequence_length, embedding_dim, embeddings_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.max_sequence_length = int(max_sequence_length)
        self.embedding_dim = int(embedding_dim)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or initializers.roberta_kernel_initializer()
        )

    def build(self, input_shape=None):
        self.token_embedding = self.add_weight(
            "token_embedding", shape=[self.vocabulary_size, self.embedding_dim], initializer=initializers.fresh(self.embeddings_initializer)
        )
        self.position_embedding = self.add_weight(
            "position_embedding",
            shape=[self.max_sequence_length + PADDING_INDEX + 1, self.embedding_dim],
            initializer=initializers.fresh(self.embeddings_initializer),
        )
        super().build(input_shape)

    def call(self, token_ids, padding_mask):
        """Returns [batch * length, embedding_dim]: the encoder works on flattened tokens, so
        every dense layer is one plain MatMul with no reshapes around it."""
        # Out-of-range ids and over-long sequences fail in Gather ("indices[...] = N is not in
        # [0, size)") in TF and TFLite alike: a clear error rather than a silent clamp.
        tokens = tf.gather(self.token_embedding, tf.reshape(token_ids, [-1]))
        positions = tf.gather(self.position_embedding, tf.reshape(position_ids(padding_mask), [-1]))
        return tokens + positions

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            max_sequence_length=self.max_sequence_length,
            embedding_dim=self.embedding_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
