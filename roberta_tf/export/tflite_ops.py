"""Lists the operators of a .tflite flatbuffer, subgraph by subgraph, without running it.

Reads the TFLite schema tables with the `flatbuffers` runtime (a TensorFlow dependency):
Model.subgraphs[*].operators[*].opcode_index -> Model.operator_codes[*]. A Select-TF (Flex)
op or a custom op is a CUSTOM (32) operator code with a `custom_code` name; a model that a
phone without Flex can run has none.
"""

import flatbuffers
from flatbuffers import table

CUSTOM = 32  # BuiltinOperator.CUSTOM in the TFLite schema
# Field slots (vtable index) in schema.fbs.
_MODEL_OPERATOR_CODES, _MODEL_SUBGRAPHS = 1, 2
_SUBGRAPH_TENSORS, _SUBGRAPH_OPERATORS = 0, 3
_TENSOR_NAME = 3
_OPERATOR_OPCODE_INDEX = 0
_CODE_DEPRECATED_BUILTIN, _CODE_CUSTOM, _CODE_BUILTIN = 0, 1, 3


def _checked_buffer(model_content):
    buf = bytearray(model_content)
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise ValueError("Not a TFLite flatbuffer (missing the TFL3 identifier).")
    return buf


def _field_offset(tab, slot):
    return tab.Offset(4 + 2 * slot)


def _vector_of_tables(tab, slot):
    offset = _field_offset(tab, slot)
    if not offset:
        return []
    start, length = tab.Vector(offset), tab.VectorLen(offset)
    tables = []
    for i in range(length):
        element = tab.Indirect(start + 4 * i)
        tables.append(table.Table(tab.Bytes, element))
    return tables


def _scalar(tab, slot, flags, default):
    offset = _field_offset(tab, slot)
    return tab.Get(flags, offset + tab.Pos) if offset else default


def _builtin_names():
    try:  # names only; the generated schema module ships inside TensorFlow
        from tensorflow.lite.python import schema_py_generated as schema

        return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    except ImportError:
        return {}


def operator_names(model_content):
    """`[[op name, ...] per subgraph]`; custom and Flex ops appear as `CUSTOM:<custom_code>`."""
    buf = _checked_buffer(model_content)
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0)
    model = table.Table(buf, root)
    names = _builtin_names()
    codes = []
    for code in _vector_of_tables(model, _MODEL_OPERATOR_CODES):
        builtin = max(
            _scalar(code, _CODE_BUILTIN, flatbuffers.number_types.Int32Flags, 0),
            _scalar(code, _CODE_DEPRECATED_BUILTIN, flatbuffers.number_types.Int8Flags, 0),
        )
        if builtin == CUSTOM:
            offset = _field_offset(code, _CODE_CUSTOM)
            custom = code.String(offset + code.Pos).decode() if offset else "?"
            codes.append(f"CUSTOM:{custom}")
        else:
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    result = []
    for subgraph in _vector_of_tables(model, _MODEL_SUBGRAPHS):
        ops = _vector_of_tables(subgraph, _SUBGRAPH_OPERATORS)
        result.append([codes[_scalar(op, _OPERATOR_OPCODE_INDEX, flatbuffers.number_types.Uint32Flags, 0)] for op in ops])
    return result


def tensor_names(model_content):
    """The name of every tensor in every subgraph (in order, with repeats across subgraphs)."""
    buf = _checked_buffer(model_content)
    model = table.Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    names = []
    for subgraph in _vector_of_tables(model, _MODEL_SUBGRAPHS):
        for tensor in _vector_of_tables(subgraph, _SUBGRAPH_TENSORS):
            offset = _field_offset(tensor, _TENSOR_NAME)
            names.append(tensor.String(offset + tensor.Pos).decode("utf-8", "replace") if offset else "")
    return names


def non_builtin_operators(model_content):
    """Sorted names of every Flex or custom op in any subgraph (empty for builtin-only models)."""
    return sorted({name for ops in operator_names(model_content) for name in ops if name.startswith("CUSTOM")})
