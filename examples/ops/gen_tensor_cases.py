#!/usr/bin/env python3
"""Golden cases for the tensor operators' reference kernels (MegaFSGraph/Operators/Tensor).

Builds single-node ONNX models with onnx.helper, runs them with ONNX Runtime (CPU, graph
optimisations off) on seeded inputs and writes one folder per case under fixtures/ops-tensor/:

    <case>/case.json        op_type, opset, typed attributes, inputs (present / constant /
                            shape / dtype), outputs (shape / dtype), golden engine, tolerance
    <case>/inputs_<i>.npy   one per present input
    <case>/output_<j>.npy   one per output
    <case>/attr_<name>.npy  tensor-valued attributes (Constant value, ConstantOfShape value)

Inputs listed in `const` become initializers in the ONNX model and are marked constant in
case.json: the Swift test hands them to the shape rule as constant inputs (Reshape's shape,
Slice's starts, ...). Every ORT result is cross-checked with onnx's ReferenceEvaluator; the
script prints any disagreement (they are informative, ORT stays the golden source).

Usage: /work/venv/bin/python examples/ops/gen_tensor_cases.py [--out fixtures/ops-tensor]
"""
import argparse
import json
import os
import shutil
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

F, H, I, I32, I8, U8, B = np.float32, np.float16, np.int64, np.int32, np.int8, np.uint8, np.bool_
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min

NAMES = {np.dtype(F): "float32", np.dtype(H): "float16", np.dtype(I): "int64", np.dtype(I32): "int32",
         np.dtype(I8): "int8", np.dtype(U8): "uint8", np.dtype(B): "bool"}
ELEM = {np.dtype(F): TensorProto.FLOAT, np.dtype(H): TensorProto.FLOAT16, np.dtype(I): TensorProto.INT64,
        np.dtype(I32): TensorProto.INT32, np.dtype(I8): TensorProto.INT8, np.dtype(U8): TensorProto.UINT8,
        np.dtype(B): TensorProto.BOOL}


class Case:
    def __init__(self, name, op, inputs, attrs=None, opset=17, const=(), noutputs=1, rtol=1e-6, atol=0.0,
                 note="", golden="ort"):
        self.name = name
        self.op = op
        self.inputs = inputs          # np arrays, or None for an omitted optional input
        self.attrs = attrs or {}      # python values; np.ndarray -> tensor attribute
        self.opset = opset
        self.const = set(const)       # input indices stored as initializers (constant)
        self.noutputs = noutputs
        self.rtol = rtol
        self.atol = atol
        self.note = note
        self.golden = golden          # "ort", or "reference" where ORT deviates from the ONNX spec


def attr_json(name, value, folder):
    if isinstance(value, np.ndarray):
        np.save(os.path.join(folder, f"attr_{name}.npy"), value)
        return {"type": "tensor", "file": f"attr_{name}.npy", "dtype": NAMES[value.dtype]}
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, np.integer)) for v in value):
            return {"type": "ints", "value": [int(v) for v in value]}
        return {"type": "floats", "value": [float(v) for v in value]}
    raise TypeError(f"attribute {name}: {value!r}")


def build_model(case, output_types=None):
    names, graph_inputs, inits = [], [], []
    for i, a in enumerate(case.inputs):
        if a is None:
            names.append("")
            continue
        n = f"in{i}"
        names.append(n)
        if i in case.const:
            inits.append(numpy_helper.from_array(a, n))
        else:
            graph_inputs.append(helper.make_tensor_value_info(n, ELEM[a.dtype], list(a.shape)))
    while names and names[-1] == "":
        names.pop()
    outs = [f"out{j}" for j in range(case.noutputs)]
    attrs = {k: (numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v) for k, v in case.attrs.items()}
    node = helper.make_node(case.op, names, outs, **attrs)
    if output_types is None:
        out_infos = [onnx.ValueInfoProto(name=o) for o in outs]
    else:
        out_infos = output_types
    graph = helper.make_graph([node], case.name, graph_inputs, out_infos, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    return model


def output_types(case):
    """Output value infos from ONNX shape inference (outputs first declared without a type)."""
    inferred = onnx.shape_inference.infer_shapes(build_model(case), strict_mode=True)
    infos = {vi.name: vi for vi in list(inferred.graph.output) + list(inferred.graph.value_info)
             if vi.type.tensor_type.elem_type}
    return [infos[f"out{j}"] for j in range(case.noutputs)]


def feeds_of(case):
    return {f"in{i}": a for i, a in enumerate(case.inputs) if a is not None and i not in case.const}


def run_ort(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def cases():
    rng = np.random.default_rng(20240612)

    def r(*shape, scale=1.0, dtype=F):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    def pos(*shape):
        return (rng.uniform(0.1, 4.0, shape)).astype(F)

    def ints(*shape, lo=-9, hi=10, dtype=I):
        return rng.integers(lo, hi, shape).astype(dtype)

    def bools(*shape):
        return rng.integers(0, 2, shape).astype(B)

    def i64(*v):
        return np.array(v, I)

    out = []
    add = out.append

    # ---------------- Unary ----------------
    add(Case("relu_f32", "Relu", [r(2, 3, 4)]))
    add(Case("relu_int32_opset14", "Relu", [ints(3, 4, dtype=I32)], opset=14))
    add(Case("leakyrelu_default_alpha", "LeakyRelu", [r(2, 3, 4)]))
    add(Case("leakyrelu_alpha_1_ftm", "LeakyRelu", [r(2, 5)], dict(alpha=1.0)))
    add(Case("leakyrelu_alpha_0_2", "LeakyRelu", [r(4, 5)], dict(alpha=0.2)))
    add(Case("sigmoid_wide_range", "Sigmoid", [r(3, 8, scale=8.0)], atol=1e-7,
             note="ORT's Sigmoid is MLAS's logistic approximation: absolute error ~2e-8, relative error up to "
                  "2e-3 for outputs near 0 (x < -10); the Swift kernel is exact to float32 rounding"))
    add(Case("tanh", "Tanh", [r(3, 8, scale=2.0)]))
    add(Case("sqrt", "Sqrt", [pos(2, 7)]))
    add(Case("reciprocal", "Reciprocal", [pos(2, 7) * np.where(rng.integers(0, 2, (2, 7)) > 0, 1, -1).astype(F)]))
    add(Case("neg_f32", "Neg", [r(2, 6)]))
    add(Case("neg_int64", "Neg", [ints(2, 6)]))
    add(Case("abs_f32", "Abs", [r(2, 6)]))
    add(Case("abs_int32", "Abs", [ints(2, 6, dtype=I32)]))
    add(Case("exp", "Exp", [r(3, 7, scale=3.0)]))
    add(Case("log", "Log", [pos(3, 7)]))
    add(Case("erf", "Erf", [r(4, 8, scale=1.5)]))
    halves = np.array([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], [-1.2, 1.7, 3.0, -3.0, 0.0, 7.9]], F)
    add(Case("floor", "Floor", [halves]))
    add(Case("ceil", "Ceil", [halves]))
    add(Case("not", "Not", [bools(3, 4)]))

    # ---------------- Binary arithmetic ----------------
    add(Case("add_broadcast_4d", "Add", [r(2, 3, 1, 5), r(3, 4, 1)]))
    add(Case("add_scalar_rhs", "Add", [r(2, 3), np.array(1.5, F)]))
    add(Case("add_int64_shape_arith", "Add", [i64(1, 512, 4, 4), i64(0, 0, 1, 1)], const=(1,)))
    add(Case("add_f16", "Add", [r(3, 4, dtype=H), r(4, dtype=H)], rtol=1e-3))
    add(Case("sub_broadcast_both", "Sub", [r(4, 1), r(1, 5)]))
    add(Case("sub_int32", "Sub", [ints(3, 4, dtype=I32), ints(4, dtype=I32)]))
    add(Case("mul_channel_scale", "Mul", [r(1, 4, 3, 3), r(1, 4, 1, 1)], const=(1,)))
    add(Case("mul_int64", "Mul", [ints(5), ints(1)]))
    add(Case("div_f32", "Div", [r(3, 4), pos(3, 1)]))
    add(Case("div_int64_truncates", "Div", [i64(7, -7, 7, -7, 0, 9, -9, 1), i64(2, 2, -2, -2, 3, 4, 4, -1)]))
    add(Case("div_int32_truncates", "Div", [np.array([[-7, 5, -6]], I32), np.array([[2], [-3]], I32)]))
    add(Case("pow_square_demod", "Pow", [r(4, 3, 3, 3), np.array(2.0, F)], const=(1,)))
    add(Case("pow_float_exponent", "Pow", [pos(2, 5), r(2, 5)]))
    add(Case("pow_int64_exponent_on_float", "Pow", [r(2, 5), np.array(3, I)], opset=15))
    add(Case("pow_int64", "Pow", [ints(2, 4, lo=-4, hi=5), ints(4, lo=0, hi=4)], opset=15))

    # ---------------- Comparison / logic ----------------
    add(Case("equal_int64_broadcast", "Equal", [ints(3, 4, lo=0, hi=3), ints(4, lo=0, hi=3)]))
    eqa = r(2, 4)
    eqb = eqa.copy()
    eqb[0, 1] += 1
    eqb[1, 3] = -eqb[1, 3]
    add(Case("equal_f32", "Equal", [eqa, eqb]))
    add(Case("equal_bool_opset11", "Equal", [bools(2, 3), bools(3)], opset=11))
    add(Case("less_f32_broadcast", "Less", [r(2, 3, 4), r(3, 1)]))
    add(Case("greater_int64", "Greater", [ints(3, 4), ints(1, 4)]))
    add(Case("lessorequal_int32", "LessOrEqual", [ints(4, 3, lo=-2, hi=2, dtype=I32), ints(4, 1, lo=-2, hi=2, dtype=I32)],
             opset=16))
    add(Case("greaterorequal_f32", "GreaterOrEqual", [np.round(r(3, 4)), np.round(r(4))], opset=16))
    add(Case("and_broadcast", "And", [bools(2, 3, 4), bools(3, 4)]))
    add(Case("or_broadcast", "Or", [bools(2, 1, 4), bools(3, 1)]))
    add(Case("xor", "Xor", [bools(3, 4), bools(3, 4)]))
    add(Case("where_broadcast_f32", "Where", [bools(3, 1), r(1, 4), r(3, 4)]))
    add(Case("where_int64_scalar_branch", "Where", [bools(2, 3), ints(2, 3), np.array(-1, I)]))

    # ---------------- Min / Max / Clip ----------------
    add(Case("max_three_broadcast", "Max", [r(2, 3, 4), r(3, 1), r(4)]))
    add(Case("max_single_input", "Max", [r(3, 4)]))
    add(Case("min_two", "Min", [r(4, 5), r(1, 5)]))
    add(Case("min_int64", "Min", [ints(3, 4), ints(4)], opset=13))
    add(Case("clip_opset6_attributes", "Clip", [r(3, 5, scale=2.0)], dict(min=-1.0, max=0.5), opset=6))
    add(Case("clip_opset6_default_max", "Clip", [r(3, 5, scale=2.0)], dict(min=0.0), opset=6))
    add(Case("clip_opset11_min_only", "Clip", [r(3, 5, scale=2.0), np.array(-0.5, F)], opset=11, const=(1,)))
    add(Case("clip_opset13_max_only", "Clip", [r(3, 5, scale=2.0), None, np.array(0.25, F)], opset=13, const=(2,)))
    add(Case("clip_opset13_both", "Clip", [r(3, 5, scale=2.0), np.array(-1.0, F), np.array(1.0, F)], opset=13))
    add(Case("clip_opset13_no_bounds", "Clip", [r(2, 3)], opset=13))
    add(Case("clip_nan_passes_through", "Clip", [np.array([np.nan, 1.0, 5.0, -5.0], F), np.array(0.0, F),
                                                 np.array(2.0, F)], opset=13, const=(1, 2)))
    add(Case("max_nan_propagates", "Max", [np.array([np.nan, 1.0, 2.0], F), np.array([1.0, np.nan, 3.0], F)], opset=13))
    add(Case("clip_int64", "Clip", [ints(3, 5), np.array(-3, I), np.array(4, I)], opset=13, const=(1, 2)))
    add(Case("clip_min_above_max", "Clip", [r(2, 4), np.array(1.0, F), np.array(-1.0, F)], opset=13, const=(1, 2)))

    # ---------------- Reductions ----------------
    add(Case("reducesum_opset11_attr_keepdims", "ReduceSum", [r(2, 3, 4)], dict(axes=[1]), opset=11))
    add(Case("reducesum_opset13_axes_input_nokeep", "ReduceSum", [r(2, 3, 4, 5), i64(1, -1)], dict(keepdims=0),
             opset=13, const=(1,)))
    add(Case("reducesum_opset13_all_axes", "ReduceSum", [r(3, 4)], opset=13))
    add(Case("reducesum_opset13_noop_empty_axes", "ReduceSum", [r(3, 4)], dict(noop_with_empty_axes=1), opset=13))
    add(Case("reducesum_opset13_empty_axes_input", "ReduceSum", [r(3, 4), np.array([], I)], dict(keepdims=0), opset=13,
             const=(1,)))
    add(Case("reducesum_int64", "ReduceSum", [ints(3, 4), i64(0)], opset=13, const=(1,)))
    add(Case("reducesum_demod_weight", "ReduceSum", [r(1, 8, 4, 3, 3), i64(2, 3, 4)], opset=17, const=(1,)))
    add(Case("reducemean_opset17_negative_axes", "ReduceMean", [r(2, 3, 4)], dict(axes=[-1, -3]), opset=17))
    add(Case("reducemean_opset18_axes_input", "ReduceMean", [r(2, 3, 4), i64(2)], dict(keepdims=0), opset=18,
             const=(1,)))
    add(Case("reducemax_opset13", "ReduceMax", [r(3, 4, 2)], dict(axes=[1]), opset=13))
    add(Case("reducemin_opset18_nokeep", "ReduceMin", [r(3, 4, 2), i64(0, 2)], dict(keepdims=0), opset=18,
             const=(1,)))
    add(Case("reducemax_int64_all", "ReduceMax", [ints(3, 4)], dict(keepdims=0), opset=13))
    add(Case("reduceprod", "ReduceProd", [pos(2, 3, 2)], dict(axes=[2]), opset=13))
    add(Case("reducesumsquare_opset13", "ReduceSumSquare", [r(2, 3, 4)], dict(axes=[0, 2]), opset=13))
    add(Case("reducesumsquare_opset18_input", "ReduceSumSquare", [r(2, 3, 4), i64(1)], opset=18, const=(1,)))
    add(Case("reducel2", "ReduceL2", [r(3, 4)], dict(axes=[1]), opset=13))
    add(Case("reducel1_opset18", "ReduceL1", [r(3, 4), i64(0)], opset=18, const=(1,)))
    add(Case("reducemax_empty_axis", "ReduceMax", [np.zeros((2, 0), F)], dict(axes=[1]), opset=13))
    add(Case("reducemin_int64_empty_axis", "ReduceMin", [np.zeros((2, 0), I)], dict(axes=[1]), opset=13))
    add(Case("reducemean_empty_axis_is_zero", "ReduceMean", [np.zeros((2, 0), F)], dict(axes=[1]), opset=13))
    add(Case("reduceprod_empty_axis", "ReduceProd", [np.zeros((2, 0), F)], dict(axes=[1]), opset=13))

    # ---------------- Softmax ----------------
    add(Case("softmax_opset13_default_axis", "Softmax", [r(2, 3, 5, scale=3.0)], opset=13))
    add(Case("softmax_opset13_axis1", "Softmax", [r(2, 3, 4)], dict(axis=1), opset=13))
    add(Case("softmax_opset11_axis1_coerced_2d", "Softmax", [r(2, 3, 4)], dict(axis=1), opset=11))
    add(Case("softmax_opset11_default_axis", "Softmax", [r(2, 3, 4)], opset=11))
    add(Case("logsoftmax_opset13", "LogSoftmax", [r(3, 6)], opset=13))

    # ---------------- Reshape family ----------------
    add(Case("reshape_zero_and_minus1", "Reshape", [r(2, 3, 4), i64(0, -1)], const=(1,)))
    add(Case("reshape_minus1_first", "Reshape", [r(2, 3, 4), i64(-1, 2, 2)], const=(1,)))
    add(Case("reshape_allowzero_opset14", "Reshape", [np.zeros((3, 0), F), i64(0, 3)], dict(allowzero=1), opset=14,
             const=(1,)))
    add(Case("reshape_int64_data", "Reshape", [ints(6), i64(3, 2)], const=(1,)))
    add(Case("flatten_default_axis", "Flatten", [r(2, 3, 4)]))
    add(Case("flatten_axis0", "Flatten", [r(2, 3, 4)], dict(axis=0)))
    add(Case("flatten_negative_axis", "Flatten", [r(2, 3, 4, 2)], dict(axis=-1), opset=13))
    add(Case("squeeze_opset11_attr", "Squeeze", [r(1, 3, 1, 4)], dict(axes=[0, -2]), opset=11))
    add(Case("squeeze_opset13_input", "Squeeze", [r(3, 1, 4), i64(-2)], opset=13, const=(1,)))
    add(Case("squeeze_opset13_no_axes", "Squeeze", [r(1, 3, 1, 4, 1)], opset=13))
    add(Case("unsqueeze_opset11_attr", "Unsqueeze", [r(3, 4)], dict(axes=[0, 3]), opset=11))
    add(Case("unsqueeze_opset13_negative", "Unsqueeze", [r(3, 4), i64(-1, 0)], opset=13, const=(1,)))
    add(Case("unsqueeze_scalar_shape_value", "Unsqueeze", [np.array(7, I), i64(0)], opset=13, const=(1,)))

    # ---------------- Transpose / Concat ----------------
    add(Case("transpose_default_reverse", "Transpose", [r(2, 3, 4)]))
    add(Case("transpose_perm_nchw_nhwc", "Transpose", [r(2, 3, 4, 5)], dict(perm=[0, 2, 3, 1])))
    add(Case("transpose_int64", "Transpose", [ints(3, 4)], dict(perm=[1, 0])))
    add(Case("transpose_f16", "Transpose", [r(2, 3, 2, dtype=H)], dict(perm=[2, 0, 1])))
    add(Case("concat_axis1", "Concat", [r(2, 3, 2), r(2, 1, 2)], dict(axis=1)))
    add(Case("concat_negative_axis_three", "Concat", [r(2, 3), r(2, 1), r(2, 2)], dict(axis=-1)))
    add(Case("concat_int64_shape_vectors", "Concat", [i64(1), i64(512), i64(-1)], dict(axis=0), const=(1, 2)))
    add(Case("concat_with_empty", "Concat", [r(2, 0), r(2, 3)], dict(axis=1)))

    # ---------------- Slice ----------------
    add(Case("slice_basic_opset13", "Slice", [r(4, 6), i64(1, 2), i64(3, 5)], opset=13, const=(1, 2)))
    add(Case("slice_flip_step_minus1", "Slice", [r(1, 2, 4, 4), i64(-1, -1), i64(INT64_MIN, INT64_MIN), i64(2, 3),
                                                 i64(-1, -1)], opset=13, const=(1, 2, 3, 4)))
    add(Case("slice_int64_max_end", "Slice", [r(3, 5), i64(2), i64(INT64_MAX), i64(1)], opset=13, const=(1, 2, 3)))
    add(Case("slice_negative_axes_steps2", "Slice", [r(3, 7, 4), i64(-6, 3), i64(7, 0), i64(-2, -1), i64(2, -1)],
             opset=13, const=(1, 2, 3, 4)))
    add(Case("slice_clamped_out_of_range", "Slice", [r(5), i64(-100), i64(100)], opset=13, const=(1, 2)))
    add(Case("slice_empty_result", "Slice", [r(3, 4), i64(3), i64(1), i64(1)], opset=13, const=(1, 2, 3)))
    add(Case("slice_opset9_attributes", "Slice", [r(4, 5)], dict(starts=[1, -3], ends=[1000, -1], axes=[0, 1]), opset=9))
    add(Case("slice_int64_shape_tail", "Slice", [i64(1, 3, 64, 64), i64(2), i64(INT64_MAX), i64(0)], opset=13,
             const=(1, 2, 3)))
    add(Case("slice_int64_max_end_negative_step_spec", "Slice", [r(5), i64(3), i64(INT64_MAX), i64(0), i64(-1)],
             opset=13, const=(1, 2, 3, 4), golden="reference",
             note="ONNX spec, ONNX shape inference and onnx.reference: end INT64_MAX is clamped to d-1, so a negative "
                  "step gives an empty slice. ONNX Runtime's kernel instead reads INT32_MAX/INT64_MAX ends as 'to the "
                  "end in the step direction' ([3, 2, 1, 0]) and warns that its output contradicts the inferred shape."))
    add(Case("slice_reverse_step_minus2", "Slice", [r(7), i64(INT64_MAX), i64(INT64_MIN), i64(0), i64(-2)], opset=13,
             const=(1, 2, 3, 4)))

    # ---------------- Gather ----------------
    add(Case("gather_axis0_int64", "Gather", [r(5, 3), i64(4, 0, 2)], const=(1,)))
    add(Case("gather_scalar_index_shape_chain", "Gather", [i64(1, 512, 8, 8), np.array(0, I)], const=(1,)))
    add(Case("gather_negative_indices_axis1", "Gather", [r(2, 5, 3), i64(-1, -5, 2)], dict(axis=1), const=(1,)))
    add(Case("gather_2d_indices_negative_axis", "Gather", [r(3, 4), np.array([[0, 3], [1, -1]], I)], dict(axis=-1),
             const=(1,)))
    add(Case("gather_int32_indices", "Gather", [ints(4, 2), np.array([3, 1], I32)]))

    # ---------------- Split ----------------
    add(Case("split_opset11_attr", "Split", [r(2, 6)], dict(axis=1, split=[1, 2, 3]), opset=11, noutputs=3))
    add(Case("split_opset13_input", "Split", [r(5, 2), i64(2, 3)], opset=13, const=(1,), noutputs=2))
    add(Case("split_opset13_equal", "Split", [r(2, 6, 2)], dict(axis=-2), opset=13, noutputs=3))
    add(Case("split_opset18_num_outputs_uneven", "Split", [r(7, 2)], dict(num_outputs=3), opset=18, noutputs=3))

    # ---------------- Expand / Tile ----------------
    add(Case("expand_bidirectional", "Expand", [r(3, 1), i64(2, 1, 4)], const=(1,)))
    add(Case("expand_shape_lower_rank", "Expand", [r(2, 3), i64(3)], const=(1,)))
    add(Case("expand_int64", "Expand", [i64(5), i64(2, 3)], const=(1,)))
    add(Case("tile_2d", "Tile", [r(2, 3), i64(2, 3)], const=(1,)))
    add(Case("tile_3d_int64", "Tile", [ints(2, 1, 2), i64(1, 3, 2)], const=(1,)))

    # ---------------- Shape / Size ----------------
    add(Case("shape_basic", "Shape", [r(2, 3, 4)]))
    add(Case("shape_start_end_opset15", "Shape", [r(2, 3, 4, 5)], dict(start=1, end=-1), opset=15))
    add(Case("shape_negative_start_opset15", "Shape", [r(2, 3, 4, 5)], dict(start=-2), opset=15))
    add(Case("shape_of_scalar", "Shape", [np.array(3.0, F)]))
    add(Case("size", "Size", [r(2, 3, 4)]))

    # ---------------- Constant / ConstantOfShape / Range ----------------
    add(Case("constant_value_tensor", "Constant", [], dict(value=r(2, 3))))
    add(Case("constant_value_int64_tensor", "Constant", [], dict(value=i64(1, -1, 4))))
    add(Case("constant_value_float", "Constant", [], dict(value_float=0.5)))
    add(Case("constant_value_floats", "Constant", [], dict(value_floats=[1.0, -2.5, 3.25])))
    add(Case("constant_value_int", "Constant", [], dict(value_int=-3)))
    add(Case("constant_value_ints", "Constant", [], dict(value_ints=[1, 512, -1])))
    add(Case("constantofshape_default_zero", "ConstantOfShape", [i64(2, 3)], const=(0,)))
    add(Case("constantofshape_int64_value", "ConstantOfShape", [i64(4)], dict(value=np.array([7], I)), const=(0,)))
    add(Case("constantofshape_float_value", "ConstantOfShape", [i64(2, 1, 2)], dict(value=np.array([0.25], F)),
             const=(0,)))
    add(Case("constantofshape_scalar", "ConstantOfShape", [np.array([], I)], dict(value=np.array([1.5], F)),
             const=(0,)))
    add(Case("range_int64", "Range", [np.array(1, I), np.array(10, I), np.array(3, I)], const=(0, 1, 2)))
    add(Case("range_f32", "Range", [np.array(0.5, F), np.array(2.0, F), np.array(0.3, F)], const=(0, 1, 2)))
    add(Case("range_negative_delta", "Range", [np.array(5, I32), np.array(-2, I32), np.array(-2, I32)],
             const=(0, 1, 2)))
    add(Case("range_empty", "Range", [np.array(5, I), np.array(1, I), np.array(1, I)], const=(0, 1, 2)))
    add(Case("range_f32_accumulates", "Range", [np.array(0.0, F), np.array(10.0, F), np.array(0.1, F)],
             const=(0, 1, 2), note="ORT adds delta repeatedly (not start + i * delta): visible after ~10 steps"))

    # ---------------- Cast ----------------
    trunc = np.array([-2.7, -1.5, -0.5, 0.0, 0.5, 1.5, 2.7, 100.9], F)
    add(Case("cast_f32_to_int64_truncates", "Cast", [trunc], dict(to=TensorProto.INT64), opset=13))
    add(Case("cast_f32_to_int32", "Cast", [trunc], dict(to=TensorProto.INT32), opset=13))
    add(Case("cast_f32_to_f16", "Cast", [r(3, 4, scale=100.0)], dict(to=TensorProto.FLOAT16), opset=13))
    add(Case("cast_f16_to_f32", "Cast", [r(3, 4, dtype=H)], dict(to=TensorProto.FLOAT), opset=13))
    add(Case("cast_int64_to_f32", "Cast", [i64(-3, 0, 7, 16777217)], dict(to=TensorProto.FLOAT), opset=13))
    add(Case("cast_f32_to_bool", "Cast", [np.array([0.0, -0.0, 0.1, -3.0, 1e-30], F)], dict(to=TensorProto.BOOL),
             opset=13))
    add(Case("cast_bool_to_f32", "Cast", [bools(2, 3)], dict(to=TensorProto.FLOAT), opset=13))
    add(Case("cast_bool_to_int64", "Cast", [bools(5)], dict(to=TensorProto.INT64), opset=13))
    add(Case("cast_int64_to_int32_wraps", "Cast", [i64(5, -5, 2**31, 2**32 + 3)], dict(to=TensorProto.INT32), opset=13))
    add(Case("cast_int32_to_int8_wraps", "Cast", [np.array([1, 127, 128, 255, -129, 300], I32)],
             dict(to=TensorProto.INT8), opset=13))
    add(Case("cast_f32_to_uint8", "Cast", [np.array([0.0, 1.9, 200.5, 255.0], F)], dict(to=TensorProto.UINT8),
             opset=13))
    add(Case("cast_uint8_to_int64", "Cast", [np.array([0, 7, 255], U8)], dict(to=TensorProto.INT64), opset=13))
    add(Case("cast_int64_to_int64_identity", "Cast", [i64(3, -1)], dict(to=TensorProto.INT64), opset=13))
    special = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -1.5, 300.7], F)
    add(Case("cast_f32_special_to_int64", "Cast", [special], dict(to=TensorProto.INT64), opset=13,
             note="NaN / out of range: x86 'integer indefinite' (INT64_MIN); not specified by ONNX"))
    add(Case("cast_f32_special_to_int32", "Cast", [special], dict(to=TensorProto.INT32), opset=13))
    add(Case("cast_f32_special_to_int8", "Cast", [special], dict(to=TensorProto.INT8), opset=13))
    add(Case("cast_f32_special_to_uint8", "Cast", [special], dict(to=TensorProto.UINT8), opset=13))

    # ---------------- Identity / Dropout ----------------
    add(Case("identity", "Identity", [r(2, 3)]))
    add(Case("identity_int64", "Identity", [i64(1, 2, 3)]))
    add(Case("dropout_opset13_inference", "Dropout", [r(3, 4)], opset=13))
    add(Case("dropout_opset12_with_mask", "Dropout", [r(3, 4)], opset=12, noutputs=2))
    add(Case("dropout_opset7_ratio", "Dropout", [r(2, 2)], dict(ratio=0.3), opset=7))
    return out


def random_cases(count=10, seed=20240613):
    """Seeded random shapes and parameters for the operators with the most corner cases
    (broadcasting, negative axes, slice bounds, reduction axes). `count` cases per family."""
    rng = np.random.default_rng(seed)
    imax = int(np.iinfo(np.int64).max)

    def rshape(rank, lo=1, hi=4):
        return [int(v) for v in rng.integers(lo, hi + 1, rank)]

    def bshape(shape):  # a shape that broadcasts to `shape`
        k = int(rng.integers(0, len(shape) + 1))
        return [d if rng.random() < 0.6 else 1 for d in shape[len(shape) - k:]]

    def normal(shape, dtype=F):
        return rng.standard_normal(shape).astype(dtype)

    out = []
    for n in range(count):
        full = rshape(int(rng.integers(0, 5)))
        a, b = bshape(full), bshape(full)
        op = ["Add", "Sub", "Mul", "Max", "Less"][n % 5]
        out.append(Case(f"random_{op.lower()}_{n}", op, [normal(a), normal(b)], opset=13))
        out.append(Case(f"random_where_{n}", "Where", [rng.integers(0, 2, bshape(full)).astype(B), normal(a), normal(b)]))
        target = full if rng.random() < 0.7 else (bshape(full) or [1])
        out.append(Case(f"random_expand_{n}", "Expand", [normal(a), np.array(target, I)], const=(1,)))
    for n in range(count):
        r = int(rng.integers(1, 5))
        shape = rshape(r, 1, 6)
        k = int(rng.integers(1, r + 1))
        axes = [int(v) - (r if rng.random() < 0.5 else 0) for v in rng.choice(r, k, replace=False)]
        steps = [int(rng.choice([1, 2, 3, -1, -2, -3])) for _ in axes]
        edge = lambda: int(rng.choice([imax, INT64_MIN, 100, -100]))
        starts = [edge() if rng.random() < 0.15 else int(rng.integers(-7, 8)) for _ in axes]
        # INT64_MAX ends with negative steps are where ORT leaves the spec (see slice_int64_max_end_negative_step_spec)
        ends = [edge() if rng.random() < 0.25 else int(rng.integers(-7, 8)) for _ in axes]
        ends = [imax - 1 if (e == imax and st < 0) else e for e, st in zip(ends, steps)]
        out.append(Case(f"random_slice_{n}", "Slice", [normal(shape), np.array(starts, I), np.array(ends, I),
                                                       np.array(axes, I), np.array(steps, I)], opset=13, const=(1, 2, 3, 4)))
        out.append(Case(f"random_transpose_{n}", "Transpose", [rng.integers(-50, 50, shape).astype(I)],
                        dict(perm=[int(v) for v in rng.permutation(r)])))
        op = ["ReduceSum", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"][n % 6]
        out.append(Case(f"random_{op.lower()}_{n}", op, [normal(shape), np.array(axes, I)],
                        dict(keepdims=int(rng.integers(0, 2))), opset=18, const=(1,), atol=2e-5,
                        note="ORT accumulates float sums in float32, the Swift kernel in double"))
        axis = int(rng.integers(-r, r))
        indices = rng.integers(-shape[axis], shape[axis], rshape(int(rng.integers(0, 3)))).astype(I)
        out.append(Case(f"random_gather_{n}", "Gather", [normal(shape), indices], dict(axis=axis), const=(1,)))
        other = list(shape)
        other[axis] = int(rng.integers(0, 4))
        out.append(Case(f"random_concat_{n}", "Concat", [normal(shape), normal(other)], dict(axis=axis)))
        out.append(Case(f"random_tile_{n}", "Tile", [normal(shape), np.array(rshape(r, 0, 3), I)], const=(1,)))
        out.append(Case(f"random_softmax_{n}", "Softmax", [normal(shape) * 3], dict(axis=axis), opset=[11, 13][n % 2]))
    return out


def compare(a, b, rtol, atol):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=max(rtol, 1e-6), atol=max(atol, 1e-7),
                           equal_nan=True)
    return np.array_equal(a, b)


def main():
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # onnx.reference casting NaN
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "ops-tensor"))
    args = ap.parse_args()
    root = os.path.abspath(args.out)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    all_cases = cases() + random_cases()
    names = [c.name for c in all_cases]
    assert len(set(names)) == len(names), "duplicate case names"
    disagreements = []
    skipped = []
    for case in all_cases:
        types = output_types(case)
        model = build_model(case, types)
        onnx.checker.check_model(model, full_check=True)
        feeds = feeds_of(case)
        try:
            results = run_ort(model, feeds)
        except Exception as e:  # noqa: BLE001
            skipped.append(f"{case.name}: ONNX Runtime cannot run it: {str(e).splitlines()[0][:160]}")
            continue
        if case.golden == "reference":
            results = [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]
        try:
            ref = ReferenceEvaluator(model).run(None, feeds)
            for j, (a, b) in enumerate(zip(results, ref)):
                b = np.asarray(b)
                if not compare(a, b.astype(a.dtype) if b.dtype != a.dtype else b, case.rtol, case.atol):
                    disagreements.append(f"{case.name}: output {j} ORT vs onnx.reference differ "
                                         f"(max abs {np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0})")
        except Exception as e:  # noqa: BLE001 - informative only
            disagreements.append(f"{case.name}: onnx.reference failed: {e}")
        folder = os.path.join(root, case.name)
        os.makedirs(folder)
        attrs = {k: attr_json(k, v, folder) for k, v in sorted(case.attrs.items())}
        inputs = []
        for i, a in enumerate(case.inputs):
            if a is None:
                inputs.append({"present": False})
                continue
            np.save(os.path.join(folder, f"inputs_{i}.npy"), a)
            inputs.append({"present": True, "constant": i in case.const, "shape": list(a.shape),
                           "dtype": NAMES[a.dtype]})
        outputs = []
        for j, o in enumerate(results):
            o = np.asarray(o)
            np.save(os.path.join(folder, f"output_{j}.npy"), o)
            outputs.append({"shape": list(o.shape), "dtype": NAMES[o.dtype]})
        meta = {"op_type": case.op, "opset": case.opset, "attributes": attrs, "inputs": inputs, "outputs": outputs,
                "rtol": case.rtol, "atol": case.atol,
                "golden": f"onnxruntime {ort.__version__}" if case.golden == "ort" else f"onnx.reference {onnx.__version__}"}
        if case.note:
            meta["note"] = case.note
        with open(os.path.join(folder, "case.json"), "w") as f:
            json.dump(meta, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    print(f"{len(all_cases) - len(skipped)} cases, {total / 1024:.0f} KiB in {root}")
    for s in skipped:
        print("skipped:", s)
    for d in disagreements:
        print("note:", d)


if __name__ == "__main__":
    main()
