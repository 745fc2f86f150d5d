"""The 2 GB FlatBuffer limit: a form too large for one .tflite fails at once, naming the forms
that fit (XLM-R large in float32 is about 2.2 GB). That the estimate bounds a real export is
checked on an exported XLM-R model in tests/models/test_xlm_roberta.py. The forms that fit
must also convert at that size: int8 quantizes its calibrated model once, without the two
debug models (each a full copy of the weights) QuantizationDebugger built on the way
(benchmarks/xlmr_large_benchmark.py measures the forms at that size)."""

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


class _Converter:
    """Stands in for a TFLiteConverter: records how it was set up; `convert()` returns the
    "calibrated model"."""

    _experimental_calibrate_only = False
    _experimental_disable_per_channel = False

    def convert(self):
        self.calibrated_with = list(self.representative_dataset())
        return b"calibrated"


def test_int8_quantizes_the_calibrated_model_once_without_debug_models(monkeypatch):
    """QuantizationDebugger built two instrumented models (float and int8 weights side by side,
    each in an interpreter) before the one it returns, two more copies of XLM-R large's
    weights; the export now makes only the final model, with the debugger's arguments."""
    from tensorflow.lite.python import convert as lite_convert

    calls = []
    names = ["encoder/attention/scores", "encoder/attention/qkv/MatMul", "encoder/layer_norm/add", "encoder/output"]
    monkeypatch.setattr(tflite.tflite_ops, "tensor_names", lambda content: names)
    monkeypatch.setattr(lite_convert, "mlir_quantize", lambda content, **kwargs: calls.append((content, kwargs)) or b"int8")
    converter = _Converter()
    samples = [("classify", {"utf8_bytes": [1, 2]}), ("classify", {"utf8_bytes": [3]})]
    assert tflite._int8_with_float_parts(converter, samples) == b"int8"
    assert converter._experimental_calibrate_only and converter.calibrated_with == samples
    [(content, kwargs)] = calls
    assert content == b"calibrated" and kwargs["enable_numeric_verify"] is False and kwargs["fully_quantize"] is False
    assert kwargs["denylisted_ops"] == list(tflite.FLOAT_OPS)
    assert kwargs["denylisted_nodes"] == ["encoder/attention/scores", "encoder/layer_norm/add"]


def test_int8_without_the_quantizer_api_fails_clearly(monkeypatch):
    from tensorflow.lite.python import convert as lite_convert

    monkeypatch.delattr(lite_convert, "mlir_quantize")
    with pytest.raises(RuntimeError, match="int8 export needs updating"):
        tflite._int8_with_float_parts(_Converter(), [])
