"""The private tf-keras behaviour roberta_tf relies on, in one place.

tf-keras (Keras 2) lacks two things keras-hub's Keras 3 tasks have, and `models/task.py`
closes the gaps with private tf-keras details. Each is named here, and
`tests/utils/test_tf_keras_internals.py` pins the behaviour so that a tf-keras upgrade that
changes it fails loudly instead of silently training the wrong variables:

- A built optimizer (`tf_keras.optimizers.Optimizer`, after its first step) keeps an index
  of the variables it was built for (`_index_dict`, keyed by `_var_key(variable)`) and
  raises `KeyError` ("cannot recognize variable") for any other. Unfreezing a layer after
  training therefore needs a fresh optimizer: `optimizer_lacks_variables` detects the case.
- `Model.fit` runs its validation pass by calling `self.evaluate(...,
  _use_cached_eval_dataset=True)` with the dataset fit already built, so an `evaluate`
  override that preprocesses raw strings must not preprocess again: `called_by_fit`.
"""

# The keyword `Model.fit` passes to `Model.evaluate` for its validation pass.
FIT_VALIDATION_KEYWORD = "_use_cached_eval_dataset"


def optimizer_lacks_variables(optimizer, variables):
    """True when `optimizer` has been built (it has taken a step) and does not know one of
    `variables`: stepping it on them would raise "The optimizer cannot recognize variable".
    False for an unbuilt optimizer (it builds for whatever variables it first sees)."""
    known = getattr(optimizer, "_index_dict", None)
    if not getattr(optimizer, "_built", False) or known is None:
        return False
    return any(optimizer._var_key(variable) not in known for variable in variables)


def called_by_fit(evaluate_kwargs):
    """True when an `evaluate(**evaluate_kwargs)` call is `fit`'s validation pass."""
    return bool(evaluate_kwargs.get(FIT_VALIDATION_KEYWORD, False))
