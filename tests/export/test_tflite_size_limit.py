"""The 2 GB FlatBuffer limit: a form too large for one .tflite fails at once, naming the forms
that fit (XLM-R large in float32 is about 2.2 GB). That the estimate bounds a real export is
checked on an exported XLM-R model in tests/models/test_xlm_roberta.py."""

import pytest

from roberta_tf.export import tflite


class _Sized:
    """Stands in for a classifier of a given parameter count (building 560M parameters to
    test a message would cost gigabytes)."""

    def __init__(self, parameters):
        self.parameters = parameters

    def count_params(self):
        return self.parameters


XLM_R_LARGE = 560_000_000


def test_xlm_r_large_in_float32_fails_naming_the_forms_that_fit():
    with pytest.raises(ValueError, match=r"2\.3 GB, past the 2 GB FlatBuffer limit.*'float16', 'dynamic', 'int8'"):
        tflite.check_fits_flatbuffer(_Sized(XLM_R_LARGE), "none")
    for quantize in ("float16", "dynamic", "int8"):
        tflite.check_fits_flatbuffer(_Sized(XLM_R_LARGE), quantize)  # no error


def test_a_model_no_form_fits_says_so():
    with pytest.raises(ValueError, match="Forms that fit: none"):
        tflite.check_fits_flatbuffer(_Sized(3_000_000_000), "int8")


def test_export_refuses_before_converting(tmp_path):
    with pytest.raises(ValueError, match="FlatBuffer limit"):
        tflite.export_tflite_forms(_Sized(XLM_R_LARGE), None, {"none": tmp_path / "m.tflite"})
    assert not list(tmp_path.iterdir())
