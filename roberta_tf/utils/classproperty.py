"""`classproperty`: a read-only property of the class (keras-hub's `presets` attribute).

`@classmethod @property` was deprecated in Python 3.11 and removed in 3.13; this descriptor
works on every Python version roberta_tf supports.
"""


class classproperty:  # noqa: N801 (named like `property`)
    """`Class.name` (and `instance.name`) calls `function(Class)`."""

    def __init__(self, function):
        self.function = function
        self.__doc__ = function.__doc__

    def __get__(self, instance, owner):
        return self.function(owner)
