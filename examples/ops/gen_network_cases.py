#!/usr/bin/env python3
"""Golden cases for the network operators' reference kernels (MegaFSGraph/Operators/Network).

Builds single-node ONNX models with onnx.helper, runs them with ONNX Runtime (CPU) on seeded
random inputs and writes one folder per case under fixtures/ops-network/:

    <case>/case.json      op_type, opset, typed attributes, inputs (present/constant/shape),
                          outputs, which engine produced the golden values
    <case>/inputs_<i>.npy one per present input
    <case>/output_<j>.npy one per output

Where ONNX Runtime rejects a valid model (e.g. Conv auto_pad SAME with dilations) or
deviates from the ONNX spec (MaxPool SAME with dilations), the case says `"golden":
"onnx.reference"` and uses onnx's ReferenceEvaluator. Every ORT case is also cross-checked
against the ReferenceEvaluator and the script reports disagreements.

Usage: /work/venv/bin/python examples/ops/gen_network_cases.py [--out fixtures/ops-network]
"""
import argparse
import json
import os
import shutil
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

F = np.float32
I = np.int64

ATTR_TYPES = {
    onnx.AttributeProto.INT: "int",
    onnx.AttributeProto.FLOAT: "float",
    onnx.AttributeProto.STRING: "string",
    onnx.AttributeProto.INTS: "ints",
    onnx.AttributeProto.FLOATS: "floats",
}

ELEM = {np.dtype(F): TensorProto.FLOAT, np.dtype(I): TensorProto.INT64}

# Cases where onnx's ReferenceEvaluator (1.23) fails or disagrees with ONNX Runtime, and why we
# trust ORT there. Anything else that disagrees is printed as DISAGREEMENT.
KNOWN = {
    "convT2d_groups_dilations": "reference evaluator cannot do grouped ConvTranspose",
    "batchnorm_2d_default_eps": "reference BatchNormalization-9 runs training mode (momentum default); ORT matches the formula",
    "maxpool_same_lower": "reference evaluator gives ceil(in/s)-1 rows for SAME_LOWER; ORT and onnx shape inference give ceil(in/s)",
    "maxpool_valid_ceil": "ceil_mode with VALID: ORT and onnx shape inference use ceil((in-k)/s)+1; the reference evaluator the spec text's ceil((in-k+1)/s)",
    "global_maxpool_1d": "reference evaluator drops the trailing spatial axis",
    "resize_tf_crop_and_resize_nearest_scales": "a round_prefer_floor tie at 1.5: ORT computes the coordinate in float32, the reference in float64",
    "resize_opset18_axes_negative_sizes": "reference evaluator does not normalise negative axes",
    "resize_opset10_nearest": "reference evaluator has no Resize-10",
    "resize_opset10_linear": "reference evaluator has no Resize-10",
    "pad_negative_crop_upfirdn": "reference evaluator (numpy.pad) cannot crop",
    "pad_reflect_negative": "reference evaluator (numpy.pad) cannot crop",
    "pad_edge_negative": "reference evaluator (numpy.pad) cannot crop",
}


class Case:
    def __init__(self, name, op, inputs, attrs=None, opset=17, const=(), golden="ort", batch="keep",
                 noutputs=1):
        self.name = name
        self.op = op
        seeded = np.random.default_rng(zlib.crc32(name.encode()))
        # list of np arrays or None (omitted optional input)
        self.inputs = [a.draw(seeded) if isinstance(a, Rand) else a for a in inputs]
        self.attrs = attrs or {}
        self.opset = opset
        self.const = set(const)       # indices of inputs stored as initializers
        self.golden = golden          # "ort" or "reference"
        self.batch = batch            # "keep": a symbolic dim 0 of input 0 must reach output dim 0
        self.noutputs = noutputs


class Rand:
    """A random float32 input, drawn when its case is built from a generator seeded by the
    case's name (so adding or reordering cases leaves the others' data unchanged)."""

    def __init__(self, *shape, scale=1.0, positive=False):
        self.shape, self.scale, self.positive = shape, scale, positive

    def draw(self, rng):
        a = rng.standard_normal(self.shape) * self.scale
        return (np.abs(a) + 0.1 if self.positive else a).astype(F)


def build_model(case):
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
    # Trailing omitted inputs are dropped, as exporters do.
    while names and names[-1] == "":
        names.pop()
    outs = [f"out{j}" for j in range(case.noutputs)]
    node = helper.make_node(case.op, names, outs, **case.attrs)
    graph = helper.make_graph([node], case.name, graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    return model, node, names


def feeds_of(case):
    return {f"in{i}": a for i, a in enumerate(case.inputs) if a is not None and i not in case.const}


def run_ort(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_ref(model, feeds):
    return ReferenceEvaluator(model).run(None, feeds)


def cases():
    r = Rand
    E = np.array([], F)
    out = []
    add = out.append

    # ---------------- Conv ----------------
    add(Case("conv2d_default", "Conv", [r(1, 3, 7, 6), r(4, 3, 3, 3)], const=(1,)))
    add(Case("conv2d_bias_pads_strides", "Conv", [r(2, 4, 9, 8), r(6, 4, 3, 3), r(6)],
             dict(pads=[1, 1, 1, 1], strides=[2, 2]), const=(1, 2)))
    add(Case("conv2d_stem_7x7_s2_p3", "Conv", [r(1, 3, 16, 16), r(8, 3, 7, 7), r(8)],
             dict(kernel_shape=[7, 7], pads=[3, 3, 3, 3], strides=[2, 2]), const=(1, 2)))
    add(Case("conv2d_asym_pads_dilations", "Conv", [r(1, 2, 10, 9), r(3, 2, 3, 2)],
             dict(pads=[2, 0, 1, 3], dilations=[2, 3], strides=[1, 2]), const=(1,)))
    add(Case("conv2d_groups2", "Conv", [r(2, 4, 6, 6), r(6, 2, 3, 3), r(6)],
             dict(group=2, pads=[1, 1, 1, 1]), const=(1, 2)))
    add(Case("conv2d_depthwise", "Conv", [r(1, 5, 8, 7), r(5, 1, 3, 3)],
             dict(group=5, pads=[1, 1, 1, 1], strides=[2, 1]), const=(1,)))
    add(Case("conv2d_blur4x4_depthwise", "Conv", [r(1, 3, 10, 10), np.tile(
        (np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0).astype(F)[None, None], (3, 1, 1, 1))],
        dict(group=3), const=(1,)))
    add(Case("conv2d_same_upper_s2", "Conv", [r(1, 2, 7, 8), r(3, 2, 3, 3)],
             dict(auto_pad="SAME_UPPER", strides=[2, 2]), const=(1,)))
    add(Case("conv2d_same_lower_k4", "Conv", [r(1, 2, 7, 6), r(2, 2, 4, 4)],
             dict(auto_pad="SAME_LOWER"), const=(1,)))
    add(Case("conv2d_same_upper_dilated", "Conv", [r(1, 2, 7, 6), r(2, 2, 3, 3)],
             dict(auto_pad="SAME_UPPER", dilations=[2, 2]), const=(1,), golden="reference"))
    add(Case("conv2d_valid_s3", "Conv", [r(1, 2, 10, 8), r(3, 2, 3, 2)],
             dict(auto_pad="VALID", strides=[3, 3]), const=(1,)))
    add(Case("conv2d_weight_not_constant", "Conv", [r(1, 4, 6, 6), r(8, 4, 3, 3)],
             dict(pads=[1, 1, 1, 1])))
    add(Case("conv1d_groups_dilation", "Conv", [r(2, 4, 11), r(6, 2, 3), r(6)],
             dict(group=2, dilations=[2], pads=[1, 2], strides=[2]), const=(1, 2)))
    add(Case("conv3d", "Conv", [r(1, 2, 5, 6, 4), r(3, 2, 3, 2, 2), r(3)],
             dict(pads=[1, 0, 1, 1, 1, 0], strides=[1, 2, 1]), const=(1, 2)))
    add(Case("conv2d_1x1_s2_resnet_downsample", "Conv", [r(1, 16, 8, 8), r(32, 16, 1, 1)],
             dict(strides=[2, 2]), const=(1,)))
    add(Case("conv2d_groups_dilation_batch2", "Conv", [r(2, 6, 11, 10), r(9, 2, 3, 2), r(9)],
             dict(group=3, dilations=[2, 2], strides=[2, 1], pads=[2, 1, 1, 0]), const=(1, 2)))
    add(Case("conv2d_32ch_16x16", "Conv", [r(1, 32, 16, 16), r(32, 32, 3, 3, scale=0.1), r(32)],
             dict(pads=[1, 1, 1, 1]), const=(1, 2)))

    # ---------------- ConvTranspose ----------------
    add(Case("convT2d_s2_modulated_upsample", "ConvTranspose", [r(1, 4, 4, 4), r(4, 3, 3, 3)],
             dict(strides=[2, 2])))
    add(Case("convT2d_pads_outpad_bias", "ConvTranspose", [r(2, 3, 5, 4), r(3, 2, 3, 3), r(2)],
             dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 0]), const=(1, 2)))
    add(Case("convT2d_groups_dilations", "ConvTranspose", [r(1, 4, 4, 5), r(4, 3, 2, 3), r(6)],
             dict(group=2, dilations=[2, 1], strides=[1, 2], pads=[0, 1, 1, 0]), const=(1, 2)))
    add(Case("convT2d_output_shape", "ConvTranspose", [r(1, 2, 3, 3), r(2, 2, 3, 3)],
             dict(strides=[3, 2], output_shape=[10, 8]), const=(1,)))
    add(Case("convT2d_output_shape_same_upper", "ConvTranspose", [r(1, 2, 3, 3), r(2, 2, 3, 3)],
             dict(strides=[2, 2], output_shape=[6, 7], auto_pad="SAME_UPPER"), const=(1,)))
    add(Case("convT2d_same_upper", "ConvTranspose", [r(1, 2, 3, 4), r(2, 3, 3, 3)],
             dict(strides=[2, 2], auto_pad="SAME_UPPER"), const=(1,)))
    add(Case("convT2d_same_lower", "ConvTranspose", [r(1, 2, 3, 4), r(2, 3, 4, 3)],
             dict(strides=[2, 2], auto_pad="SAME_LOWER"), const=(1,)))
    add(Case("convT2d_valid", "ConvTranspose", [r(1, 2, 3, 4), r(2, 3, 3, 3)],
             dict(strides=[2, 1], auto_pad="VALID"), const=(1,)))
    add(Case("convT1d_same_upper_negative_total", "ConvTranspose", [r(1, 2, 4), r(2, 2, 1)],
             dict(strides=[3], auto_pad="SAME_UPPER"), const=(1,), golden="reference"))
    add(Case("convT1d_same_lower_negative_total", "ConvTranspose", [r(1, 2, 4), r(2, 2, 2)],
             dict(strides=[3], auto_pad="SAME_LOWER"), const=(1,), golden="reference"))
    add(Case("convT2d_16to8_3x3_s2_8x8", "ConvTranspose", [r(1, 16, 8, 8), r(16, 8, 3, 3, scale=0.2), r(8)],
             dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), const=(1, 2)))
    add(Case("convT1d", "ConvTranspose", [r(2, 3, 6), r(3, 2, 4), r(2)],
             dict(strides=[3], pads=[1, 2]), const=(1, 2)))
    add(Case("convT3d", "ConvTranspose", [r(1, 2, 3, 2, 3), r(2, 2, 2, 3, 2)],
             dict(strides=[2, 1, 2]), const=(1,)))

    # ---------------- Gemm / MatMul ----------------
    add(Case("gemm_linear_transB_bias", "Gemm", [r(3, 16), r(8, 16), r(8)], dict(transB=1), const=(1, 2)))
    add(Case("gemm_alpha_beta_transA_C2d", "Gemm", [r(5, 4), r(5, 6), r(4, 6)],
             dict(transA=1, alpha=0.5, beta=-2.0), const=(1, 2), batch="none"))
    add(Case("gemm_C_column", "Gemm", [r(4, 3), r(3, 5), r(4, 1)], dict(beta=0.25), const=(1, 2), batch="none"))
    add(Case("gemm_C_scalar_both_trans", "Gemm", [r(3, 4), r(5, 3), np.array(1.5, F)],
             dict(transA=1, transB=1), const=(2,), batch="none"))
    add(Case("gemm_no_C", "Gemm", [r(2, 7), r(7, 3)], {}, const=(1,), opset=13))
    add(Case("matmul_2d", "MatMul", [r(4, 6), r(6, 5)], const=(1,)))
    add(Case("matmul_batch_broadcast", "MatMul", [r(2, 1, 3, 4), r(3, 4, 2)], batch="none"))
    add(Case("matmul_1d_lhs", "MatMul", [r(4), r(2, 4, 3)], batch="none"))
    add(Case("matmul_1d_rhs", "MatMul", [r(2, 3, 4), r(4)]))
    add(Case("matmul_1d_1d", "MatMul", [r(5), r(5)], batch="none"))

    # ---------------- BatchNormalization ----------------
    c = 5
    bn = lambda: [r(c), r(c), r(c), r(c, positive=True)]
    add(Case("batchnorm_4d", "BatchNormalization", [r(2, c, 3, 4)] + bn(), dict(epsilon=1e-3),
             const=(1, 2, 3, 4), opset=15))
    add(Case("batchnorm_2d_default_eps", "BatchNormalization", [r(3, c)] + bn(), const=(1, 2, 3, 4), opset=9))
    add(Case("batchnorm_3d", "BatchNormalization", [r(2, c, 7)] + bn(), dict(epsilon=1e-5),
             const=(1, 2, 3, 4), opset=14))

    # ---------------- Pooling ----------------
    add(Case("maxpool_stem_3x3_s2_p1", "MaxPool", [r(1, 4, 9, 9)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])))
    add(Case("maxpool_default_strides", "MaxPool", [r(2, 2, 5, 4)], dict(kernel_shape=[2, 3])))
    add(Case("maxpool_ceil_drop_last", "MaxPool", [r(1, 2, 5, 7)],
             dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)))
    add(Case("maxpool_ceil_dilated", "MaxPool", [r(1, 1, 8, 7)],
             dict(kernel_shape=[3, 2], strides=[2, 2], dilations=[2, 3], pads=[1, 0, 2, 1], ceil_mode=1)))
    add(Case("maxpool_same_upper", "MaxPool", [r(1, 2, 7, 6)],
             dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")))
    add(Case("maxpool_same_lower", "MaxPool", [r(1, 2, 7, 6)],
             dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")))
    add(Case("maxpool_same_upper_dilated", "MaxPool", [r(1, 1, 6, 7)],
             dict(kernel_shape=[2, 2], dilations=[2, 2], auto_pad="SAME_UPPER"), golden="reference"))
    add(Case("maxpool_valid_ceil", "MaxPool", [r(1, 1, 6, 7)],
             dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID", ceil_mode=1)))
    add(Case("maxpool_1d", "MaxPool", [r(2, 3, 9)], dict(kernel_shape=[3], strides=[2], pads=[1, 1])))
    add(Case("maxpool_3d", "MaxPool", [r(1, 2, 4, 5, 4)], dict(kernel_shape=[2, 2, 2], strides=[2, 2, 1])))
    add(Case("avgpool_exclude_pad", "AveragePool", [r(1, 2, 6, 7)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])))
    add(Case("avgpool_include_pad", "AveragePool", [r(1, 2, 6, 7)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)))
    add(Case("avgpool_include_pad_ceil", "AveragePool", [r(1, 2, 6, 6)],
             dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1, count_include_pad=1)))
    add(Case("avgpool_same_lower", "AveragePool", [r(1, 1, 5, 6)],
             dict(kernel_shape=[2, 3], auto_pad="SAME_LOWER")))
    add(Case("avgpool_dilated_opset19", "AveragePool", [r(1, 1, 7, 7)],
             dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), opset=19))
    add(Case("avgpool_same_upper_include_pad", "AveragePool", [r(1, 2, 7, 5)],
             dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER", count_include_pad=1)))
    add(Case("global_avgpool", "GlobalAveragePool", [r(2, 3, 5, 4)]))
    add(Case("global_maxpool_1d", "GlobalMaxPool", [r(2, 3, 7)]))

    # ---------------- Resize ----------------
    x4 = lambda *s: r(*s)

    def resize(name, x, scales=None, sizes=None, roi=None, opset=17, batch="keep", golden="ort", **attrs):
        if opset >= 13:
            ins = [x, roi, scales, sizes]
        else:  # opsets 11-12: roi and scales are required inputs (empty when unused)
            ins = [x, roi if roi is not None else E, scales if scales is not None else E, sizes]
        const = tuple(i for i in (1, 2, 3) if ins[i] is not None)
        add(Case(name, "Resize", ins, attrs, opset=opset, const=const, batch=batch, golden=golden))

    S = lambda *v: np.array(v, F)
    Z = lambda *v: np.array(v, I)
    resize("resize_linear_align_corners_x2", x4(1, 3, 4, 5), scales=S(1, 1, 2, 2),
           mode="linear", coordinate_transformation_mode="align_corners")
    resize("resize_linear_align_corners_sizes", x4(2, 2, 4, 4), sizes=Z(2, 2, 8, 8), batch="fixed",
           mode="linear", coordinate_transformation_mode="align_corners")
    resize("resize_linear_half_pixel_down", x4(1, 2, 7, 9), scales=S(1, 1, 0.5, 0.4), mode="linear")
    resize("resize_linear_pytorch_half_pixel", x4(1, 2, 5, 3), sizes=Z(1, 2, 1, 7), batch="fixed",
           mode="linear", coordinate_transformation_mode="pytorch_half_pixel")
    resize("resize_linear_asymmetric_x3", x4(1, 1, 3, 4), scales=S(1, 1, 3, 1.5),
           mode="linear", coordinate_transformation_mode="asymmetric")
    resize("resize_linear_3d_input", x4(2, 3, 4), scales=S(1, 2, 0.75), mode="linear", golden="reference")
    resize("resize_linear_2d_input", x4(3, 4), scales=S(2, 1.5), mode="linear", batch="none")
    resize("resize_nearest_default_x2", x4(1, 2, 3, 4), scales=S(1, 1, 2, 2))
    resize("resize_nearest_asymmetric_floor", x4(1, 2, 3, 4), scales=S(1, 1, 2, 3),
           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    resize("resize_nearest_prefer_ceil_sizes", x4(1, 1, 5, 7), sizes=Z(1, 1, 8, 3), batch="fixed",
           nearest_mode="round_prefer_ceil")
    resize("resize_nearest_ceil_align_corners", x4(1, 1, 4, 6), sizes=Z(1, 1, 7, 4), batch="fixed",
           coordinate_transformation_mode="align_corners", nearest_mode="ceil")
    resize("resize_nearest_pytorch_half_pixel_down", x4(1, 1, 9, 8), scales=S(1, 1, 1 / 3, 0.5),
           coordinate_transformation_mode="pytorch_half_pixel")
    resize("resize_nearest_floor_half_pixel_down", x4(1, 2, 7, 9), sizes=Z(1, 2, 3, 4), batch="fixed",
           nearest_mode="floor")
    resize("resize_linear_align_corners_fpn_up2", x4(1, 8, 16, 16), scales=S(1, 1, 2, 2), mode="linear",
           coordinate_transformation_mode="align_corners")
    resize("resize_nearest_5d", x4(1, 2, 2, 3, 2), scales=S(1, 1, 2, 1.5, 1))
    resize("resize_nearest_opset11_sizes", x4(1, 2, 3, 3), sizes=Z(1, 2, 5, 4), opset=11, batch="fixed",
           coordinate_transformation_mode="asymmetric")
    resize("resize_nearest_opset11_scales", x4(1, 2, 3, 3), scales=S(1, 1, 2, 2), opset=11)
    resize("resize_cubic_default", x4(1, 2, 4, 4), scales=S(1, 1, 2, 1.5), mode="cubic")
    resize("resize_cubic_exclude_outside_a05", x4(1, 1, 5, 4), scales=S(1, 1, 1.6, 2), mode="cubic",
           cubic_coeff_a=-0.5, exclude_outside=1, coordinate_transformation_mode="asymmetric")
    resize("resize_tf_crop_and_resize_linear", x4(1, 1, 5, 5), sizes=Z(1, 1, 4, 3), batch="fixed",
           roi=S(0, 0, 0.1, -0.2, 1, 1, 0.8, 1.3), mode="linear",
           coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-7.0)
    resize("resize_tf_crop_and_resize_nearest_scales", x4(1, 1, 6, 6), scales=S(1, 1, 1.5, 0.8),
           roi=S(0, 0, 0.2, 0.1, 1, 1, 0.6, 0.9), coordinate_transformation_mode="tf_crop_and_resize",
           batch="none")
    resize("resize_opset18_axes_scales", x4(1, 2, 3, 4), scales=S(2, 0.5), opset=18, axes=[2, 3],
           mode="linear")
    resize("resize_opset18_axes_negative_sizes", x4(2, 1, 3, 4), sizes=Z(6), opset=18, axes=[-1])
    resize("resize_opset18_not_larger", x4(1, 1, 3, 4), sizes=Z(6, 6), opset=18, axes=[2, 3],
           keep_aspect_ratio_policy="not_larger", mode="linear")
    resize("resize_opset18_not_smaller", x4(1, 1, 3, 5), sizes=Z(7, 7), opset=18, axes=[2, 3],
           keep_aspect_ratio_policy="not_smaller")
    resize("resize_half_pixel_symmetric_opset19", x4(1, 1, 4, 5), scales=S(1, 1, 1.5, 0.7), opset=19,
           mode="linear", coordinate_transformation_mode="half_pixel_symmetric")
    add(Case("resize_opset10_nearest", "Resize", [x4(1, 2, 4, 4), S(1, 1, 1.5, 0.6)], dict(mode="nearest"),
             opset=10, const=(1,)))
    add(Case("resize_opset10_linear", "Resize", [x4(1, 1, 3, 4), S(1, 1, 2, 1.5)], dict(mode="linear"),
             opset=10, const=(1,)))

    # ---------------- Pad ----------------
    def pad(name, x, pads, value=None, axes=None, opset=18, batch="none", golden="ort", **attrs):
        ins = [x, np.array(pads, I), value, axes]
        while ins and ins[-1] is None:
            ins.pop()
        const = tuple(i for i in range(1, len(ins)) if ins[i] is not None)
        add(Case(name, "Pad", ins, attrs, opset=opset, const=const, batch=batch, golden=golden))

    pad("pad_constant_default", r(2, 3, 4), [0, 1, 2, 0, 2, 1], batch="keep")
    pad("pad_constant_value", r(1, 2, 3, 3), [0, 0, 1, 2, 0, 0, 2, 1], value=np.array(-1.5, F), batch="keep")
    pad("pad_negative_crop_upfirdn", r(1, 2, 6, 6), [0, 0, 2, -1, 0, 0, -1, 1], batch="keep")
    pad("pad_reflect", r(1, 2, 4, 5), [0, 0, 2, 3, 0, 0, 3, 1], mode="reflect", batch="keep")
    pad("pad_reflect_negative", r(1, 6), [0, -2, 0, 2], mode="reflect", batch="keep")
    pad("pad_edge", r(2, 3, 4), [1, 0, 2, 0, 3, 1], mode="edge")
    pad("pad_edge_negative", r(3, 6), [0, 2, 0, -3], mode="edge", batch="keep")
    pad("pad_axes_opset18", r(2, 3, 4), [1, 2, 0, 3], axes=np.array([-1, 1], I), mode="constant",
        value=np.array(2.0, F), batch="keep")
    pad("pad_opset11_reflect", r(3, 4), [1, 2, 2, 3], opset=11, mode="reflect")
    pad("pad_wrap_opset19", r(2, 5), [1, 3, 0, 4], opset=19, mode="wrap")
    add(Case("pad_opset2_attribute", "Pad", [r(2, 3)], dict(pads=[1, 0, 0, 2], value=3.5), opset=2, batch="none",
             golden="reference"))
    add(Case("pad_opset2_edge", "Pad", [r(2, 3)], dict(pads=[0, 2, 1, 1], mode="edge"), opset=2, batch="none",
             golden="reference"))
    return out


def attr_json(node):
    out = {}
    for a in node.attribute:
        t = ATTR_TYPES[a.type]
        v = helper.get_attribute_value(a)
        if t == "string":
            v = v.decode()
        elif t == "float":
            v = float(v)
        elif t == "floats":
            v = [float(x) for x in v]
        elif t == "ints":
            v = [int(x) for x in v]
        out[a.name] = {"type": t, "value": v}
    return out


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "fixtures", "ops-network"))
    args = ap.parse_args()
    root = os.path.abspath(args.out)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(root)
    total, disagreements = 0, []
    all_cases = cases()
    names = [c.name for c in all_cases]
    assert len(names) == len(set(names)), "duplicate case names"
    for case in all_cases:
        model, node, names_in = build_model(case)
        feeds = feeds_of(case)
        ref = None
        try:
            ref = run_ref(model, feeds)
        except Exception as e:  # noqa: BLE001
            ref_err = str(e).splitlines()[0][:150]
        if case.golden == "ort":
            outs = run_ort(model, feeds)
            engine = f"onnxruntime {ort.__version__}"
            agree = ref is not None and all(
                o.shape == rr.shape and np.allclose(o, rr, rtol=1e-4, atol=1e-4) for o, rr in zip(outs, ref))
            if agree and case.name in KNOWN:
                disagreements.append(f"{case.name}: listed in KNOWN but ORT and the reference evaluator now agree")
            elif not agree and case.name not in KNOWN:
                why = f"reference evaluator failed ({ref_err})" if ref is None else \
                    f"ORT {outs[0].shape} vs reference {np.shape(ref[0])}"
                disagreements.append(f"{case.name}: {why}")
            elif not agree:
                engine += f" (reference evaluator differs: {KNOWN[case.name]})"
        else:
            assert ref is not None, f"{case.name}: reference evaluator failed: {ref_err}"
            outs = ref
            engine = f"onnx.reference {onnx.__version__}"
            try:
                o2 = run_ort(model, feeds)
                same = all(a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(o2, outs))
                engine += " (ONNX Runtime " + ("agrees" if same else "differs") + ")"
            except Exception as e:  # noqa: BLE001
                engine += " (ONNX Runtime rejects: " + str(e).split("Status Message:")[-1].strip()[:120] + ")"
        d = os.path.join(root, case.name)
        os.makedirs(d)
        inputs_json = []
        for i, a in enumerate(case.inputs):
            if a is None:
                inputs_json.append({"present": False})
                continue
            np.save(os.path.join(d, f"inputs_{i}.npy"), a)
            inputs_json.append({"present": True, "constant": i in case.const, "shape": list(a.shape),
                                "dtype": str(a.dtype)})
        outputs_json = []
        for j, o in enumerate(outs):
            o = np.asarray(o, dtype=F)
            np.save(os.path.join(d, f"output_{j}.npy"), o)
            outputs_json.append({"shape": list(o.shape)})
        meta = {"op_type": case.op, "opset": case.opset, "attributes": attr_json(node),
                "inputs": inputs_json, "outputs": outputs_json, "golden": engine, "batch": case.batch}
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(meta, f, indent=1)
        total += 1
        print(f"{case.name:45s} {engine}")
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(root) for fn in fns)
    print(f"{total} cases, {size / 1e6:.2f} MB in {root}")
    for d in disagreements:
        print("DISAGREEMENT", d)


if __name__ == "__main__":
    main()
