"""`Untracked`: the one place for state that tf-keras and tf.Module must not track.

Keras layers and `tf.Module`s inspect their attributes: a list or dict becomes a
`ListWrapper`/`_DictWrapper` that is walked on every call (50k vocabulary entries cost
~18 ms per tokenizer call), and a layer or model attribute is saved with the object (a second
model sharing the classifier's layers would store its weights twice). A plain object is
neither wrapped nor walked, so state that belongs to the Python object only (tokenizer
tables, a derived model, cached tf.functions, compile arguments, label names) lives in one
`Untracked` attribute instead of `self.__dict__[...]` writes scattered over the classes.
"""


class Untracked:
    """An attribute bag invisible to Keras and tf.Module tracking.

    >>> state = Untracked(label_names=["neg", "pos"])
    >>> state.label_names
    ['neg', 'pos']
    """

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self):
        return f"Untracked({', '.join(sorted(self.__dict__))})"
