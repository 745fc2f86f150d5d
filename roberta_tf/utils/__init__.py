"""Small helpers with no roberta_tf dependency: atomic directories and file hashes
(`files.py`), the untracked-state holder for Keras objects (`untracked.py`), the one adapter
to private tf-keras behaviour (`tf_keras_internals.py`) and `classproperty`."""
