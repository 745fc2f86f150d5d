"""Shared last step of every converter: named arrays -> roberta_tf model -> preset directory."""

from absl import logging


def write_preset(output, backbone_arguments, arrays, bpe_vocabulary=None, head=None, source=None, overwrite=False):
    """Builds the model, moves `arrays` into it and saves a preset.

    Args:
        backbone_arguments: RobertaBackbone keyword arguments.
        arrays: `{preset weight name: numpy array}`. Consumed (emptied) while assigning, so the
            process holds at most the arrays plus the model's variables: about two copies.
        bpe_vocabulary: a `BpeVocabulary` for the preset's tokenizer, or None (no tokenizer).
        head: None (backbone-only) or `{"num_classes", "hidden_dim", "dropout", "label_names"}`.
        source: provenance for metadata.json.
    """
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier
    from roberta_tf.presets import saver, weights

    logging.info("Building the model (%d layers, hidden %d).", backbone_arguments["num_layers"], backbone_arguments["hidden_dim"])
    backbone = RobertaBackbone(**backbone_arguments)
    classifier = None
    variables = backbone.named_weights()
    if head is not None:
        classifier = RobertaTextClassifier(backbone, compile=False, **head)
        variables = classifier.named_weights()
    logging.info("Assigning %d tensors.", len(arrays))
    weights.assign(variables, arrays, (source or {}).get("path", "checkpoint"), consume=True)
    logging.info("Writing the preset to %s.", output)
    # The tokenizer files are written from the validated vocabulary; the tokenizer layer is
    # built when the preset is loaded.
    saver.save_preset(output, backbone, classifier, source=source, overwrite=overwrite, bpe_vocabulary=bpe_vocabulary)
    return output
