"""Packs tokenized segments into RoBERTa's input layout, with truncation and padding.

Layouts (fairseq's `roberta.encode` and Hugging Face's RobertaProcessing):
    single text: `<s> A </s>`;    pair: `<s> A </s></s> B </s>`;    then `<pad>` (id 1).

Truncation keeps the total within `sequence_length`:
- "round_robin" (keras-hub's default, tensorflow_text.RoundRobinTrimmer): tokens are
  granted one at a time to each segment in turn, so a short segment keeps all of its tokens
  and a long one gets the rest;
- "longest_first" (Hugging Face's default): tokens are taken from the longer segment until
  both fit, the odd token going to the second segment when both are cut to half.
Padding goes to `sequence_length` ("max_length") or to the longest packed row ("longest").

Written as index arithmetic on flat values + row splits (GATHER, SELECT, comparisons), so the
same function packs in TF graphs and in builtin-only TFLite models. `pack_texts` (strings in)
is what every consumer calls: the preprocessor layer, the serving module and every export.
"""

import tensorflow as tf

from roberta_tf.preprocessing import options


def _row_lengths(row_splits):
    return row_splits[1:] - row_splits[:-1]


def truncated_lengths(lengths, budget, truncate):
    """Kept length of each segment per row.

    Args:
        lengths: list of 1 or 2 int32 [batch] segment lengths.
        budget: int32 scalar, tokens available for segment content.
        truncate: one of `options.TRUNCATION_STRATEGIES`.
    """
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], budget)]
    a, b = lengths
    fits = a + b <= budget
    if truncate == "round_robin":
        # Segment 0 gets ceil(budget / 2) unless segment 1 needs less than its half.
        keep_a = tf.minimum(a, tf.maximum((budget + 1) // 2, budget - b))
        keep_b = tf.minimum(b, budget - keep_a)
    else:  # longest_first, as tokenizers' `truncate_encodings`
        # The shorter segment keeps what it has; the longer one gets the rest, but at least
        # as much as the shorter (both cut to half when even that does not fit).
        short = tf.minimum(a, b)
        keep_long = tf.where(short > budget, short, tf.maximum(short, budget - short))
        halve = short + keep_long > budget
        keep_short = tf.where(halve, budget // 2, short)
        keep_long = tf.where(halve, budget // 2 + budget % 2, keep_long)
        swap = a > b
        keep_a = tf.minimum(a, tf.where(swap, keep_long, keep_short))
        keep_b = tf.minimum(b, tf.where(swap, keep_short, keep_long))
    return [tf.where(fits, a, keep_a), tf.where(fits, b, keep_b)]


def pack(segments, sequence_length, start_id, end_id, pad_id, truncate="round_robin", padding="max_length"):
    """Packs one or two segments per row.

    Args:
        segments: list of 1 or 2 `(values, row_splits)`: int32 [n] ids and int32/int64
            [batch + 1] splits (all segments have the same batch).
        sequence_length: python int, the maximum packed length.
        start_id, end_id, pad_id: the `<s>`, `</s>` and `<pad>` ids.
        truncate: "round_robin" or "longest_first".
        padding: "max_length" (width `sequence_length`) or "longest" (width of the longest row).

    Returns:
        token_ids: int32 [batch, width]; padding_mask: bool [batch, width].
    """
    options.check_truncate(truncate)
    options.check_padding(padding)
    options.check_sequence_length(sequence_length)
    if len(segments) not in (1, 2):
        raise ValueError(f"RoBERTa packs one or two segments. Received: {len(segments)} segments.")
    num_special = 2 if len(segments) == 1 else 4
    values = [tf.cast(v, tf.int32) for v, _ in segments]
    starts = [tf.cast(s[:-1], tf.int32) for _, s in segments]
    lengths = [tf.cast(_row_lengths(s), tf.int32) for _, s in segments]
    kept = truncated_lengths(lengths, sequence_length - num_special, truncate)

    # Row layout: <s> A </s> [</s> B </s>]; per row, where each piece begins.
    a_begin = 1
    a_end = a_begin + kept[0]  # position of the first </s>
    total = a_end + 1
    if len(segments) == 2:
        b_begin = a_end + 2
        b_end = b_begin + kept[1]
        total = b_end + 1
    # "longest" of an empty batch is `num_special` wide (the shortest packed row), so the
    # `<s>` column exists and a model answers an empty batch with [0, classes].
    width = sequence_length if padding == "max_length" else tf.reduce_max(tf.concat([total, [num_special]], 0))

    position = tf.range(width)[tf.newaxis, :]  # [1, width]

    def column(x):
        return x[:, tf.newaxis]  # [batch, 1]

    def take(segment, begin):
        offset = position - column(begin)  # [batch, width]
        inside = (offset >= 0) & (offset < column(kept[segment]))
        index = column(starts[segment]) + tf.maximum(offset, 0)
        safe = tf.minimum(index, tf.maximum(tf.size(values[segment]) - 1, 0))
        gathered = tf.gather(tf.concat([values[segment], [0]], 0), safe)
        return inside, gathered

    token_ids = tf.fill(tf.shape(position + column(total)), pad_id)
    in_a, ids_a = take(0, tf.fill(tf.shape(a_end), a_begin))
    token_ids = tf.where(in_a, ids_a, token_ids)
    token_ids = tf.where(tf.equal(position, 0), start_id, token_ids)
    token_ids = tf.where(tf.equal(position, column(a_end)), end_id, token_ids)
    if len(segments) == 2:
        in_b, ids_b = take(1, b_begin)
        token_ids = tf.where(in_b, ids_b, token_ids)
        token_ids = tf.where(tf.equal(position, column(a_end + 1)) | tf.equal(position, column(b_end)), end_id, token_ids)
    padding_mask = position < column(total)
    token_ids = tf.where(padding_mask, token_ids, pad_id)
    return token_ids, padding_mask


def pack_texts(tokenizer, texts, sequence_length, truncate=options.DEFAULT_TRUNCATE, padding=options.DEFAULT_PADDING):
    """Tokenizes and packs one or two batches of texts: the one "texts to model inputs" step.

    Each segment keeps at most `sequence_length - specials` tokens whatever the truncation, so
    only that many are asked of the tokenizer (`max_tokens`): it then skips the pieces of a
    long text that cannot reach them, which bounds the cost of any text (exact ids).

    Args:
        tokenizer: a tokenizer with `tokenize(texts, max_tokens)` (rank-1 tf.string -> int32
            RaggedTensor; eagerly it runs one traced graph, inside a graph it inlines) and
            `start_token_id`, `end_token_id`, `pad_token_id`: a `RobertaTokenizer`.
        texts: a list of 1 or 2 rank-1 tf.string tensors of the same size (single texts, or
            the two segments of pairs).
        sequence_length, truncate, padding: as `pack`.

    Returns:
        token_ids: int32 [batch, width]; padding_mask: bool [batch, width].
    """
    budget = options.check_sequence_length(sequence_length) - (2 if len(texts) == 1 else 4)
    ragged = [tokenizer.tokenize(segment, max_tokens=budget) for segment in texts]
    return pack(
        [(r.flat_values, r.row_splits) for r in ragged],
        sequence_length,
        start_id=tokenizer.start_token_id,
        end_id=tokenizer.end_token_id,
        pad_id=tokenizer.pad_token_id,
        truncate=truncate,
        padding=padding,
    )
