"""Writes the small committed seeds under Fuzz/seeds/ (images, label maps, ONNX models,
multipart bodies). Run once with /work/venv/bin/python (onnx, numpy, Pillow); the fuzz script
only copies the results. Larger seeds (fixtures, converted .mfs files) are made at run time
by scripts/fuzz.sh."""
import io, os, struct, zlib
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
def out(kind, name, data):
    os.makedirs(os.path.join(here, kind), exist_ok=True)
    with open(os.path.join(here, kind, name), "wb") as f:
        f.write(data)

rng = np.random.default_rng(10)

# Images: each PNG colour type and bit depth libpng handles, and JPEG variants.
def png(img, **kw):
    b = io.BytesIO(); img.save(b, "PNG", **kw); return b.getvalue()
def jpeg(img, **kw):
    b = io.BytesIO(); img.save(b, "JPEG", **kw); return b.getvalue()
rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")
out("image", "rgb.png", png(rgb))
out("image", "grey.png", png(rgb.convert("L")))
out("image", "grey_alpha.png", png(rgb.convert("LA")))
out("image", "rgba.png", png(rgb.convert("RGBA")))
pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=4); pal.info["transparency"] = 0
out("image", "palette_trns.png", png(pal, transparency=0))
out("image", "bilevel.png", png(rgb.convert("1")))
out("image", "grey16.png", png(Image.fromarray((rng.integers(0, 65536, (4, 3))).astype(np.uint16))))
out("image", "baseline444.jpg", jpeg(rgb, quality=90, subsampling=0))
out("image", "progressive420.jpg", jpeg(rgb, quality=50, subsampling=2, progressive=True))
out("image", "grey.jpg", jpeg(rgb.convert("L")))
out("image", "cmyk.jpg", jpeg(rgb.convert("CMYK")))
exif = Image.Exif(); exif[0x0112] = 6   # orientation: rotate 90
out("image", "exif_orientation6.jpg", jpeg(rgb, exif=exif.tobytes()))

# Label maps: greyscale labels, equal-channel RGB, and rejected variants.
labels = rng.integers(0, 19, (7, 6), dtype=np.uint8)
out("mask", "labels.png", png(Image.fromarray(labels, "L")))
out("mask", "labels_rgb.png", png(Image.fromarray(np.stack([labels] * 3, -1), "RGB")))
out("mask", "labels_out_of_range.png", png(Image.fromarray(labels + 19, "L")))
def with_chunk(data, ctype, payload):   # insert a chunk after IHDR
    chunk = struct.pack(">I", len(payload)) + ctype + payload
    chunk += struct.pack(">I", zlib.crc32(ctype + payload) & 0xffffffff)
    return data[:33] + chunk + data[33:]
out("mask", "labels_gama.png", with_chunk(png(Image.fromarray(labels, "L")), b"gAMA", struct.pack(">I", 100000)))
out("mask", "labels_srgb.png", with_chunk(png(Image.fromarray(labels, "L")), b"sRGB", b"\x00"))

# ONNX: small graphs with the features the importer handles.
def model(nodes, inputs, outputs, inits=(), opset=17, value_info=(), **kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits), value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = 8
    return m.SerializeToString()
vi = helper.make_tensor_value_info
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
out("onnx", "conv_relu.onnx", model(
    [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
     helper.make_node("Relu", ["c"], ["y"])],
    [vi("x", TensorProto.FLOAT, ["N", 2, 4, 4])], [vi("y", TensorProto.FLOAT, None)],
    [numpy_helper.from_array(f32(3, 2, 3, 3), "w"), numpy_helper.from_array(f32(3), "b")]))
out("onnx", "bn_fold.onnx", model(
    [helper.make_node("Conv", ["x", "w"], ["c"]),
     helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["y"], epsilon=1e-5)],
    [vi("x", TensorProto.FLOAT, [1, 2, 3, 3])], [vi("y", TensorProto.FLOAT, [1, 2, 3, 3])],
    [numpy_helper.from_array(f32(2, 2, 1, 1), "w")] +
    [numpy_helper.from_array(np.abs(f32(2)) + 0.5, n) for n in "somv"]))
out("onnx", "shape_arith.onnx", model(
    [helper.make_node("Shape", ["x"], ["s"]),
     helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
     helper.make_node("Concat", ["n", "k"], ["shape"], axis=0),
     helper.make_node("Reshape", ["x", "shape"], ["y"])],
    [vi("x", TensorProto.FLOAT, ["N", 2, 3])], [vi("y", TensorProto.FLOAT, None)],
    [numpy_helper.from_array(np.array([0], np.int64), "i"), numpy_helper.from_array(np.array([-1], np.int64), "k")]))
out("onnx", "constant_gemm.onnx", model(
    [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(f32(3, 4), "wv")),
     helper.make_node("Gemm", ["x", "w"], ["y"], transB=0, alpha=0.5),
     ],
    [vi("x", TensorProto.FLOAT, [2, 3])], [vi("y", TensorProto.FLOAT, [2, 4])],
    doc_string="seed", producer_name="make_seeds"))
t16 = helper.make_tensor("h", TensorProto.FLOAT16, [2], np.array([1.5, -2], np.float16).view(np.uint16).tolist())
out("onnx", "float16_cast_resize.onnx", model(
    [helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
     helper.make_node("Resize", ["x", "", "sc"], ["r"], mode="nearest"),
     helper.make_node("Add", ["r", "hf"], ["y"])],
    [vi("x", TensorProto.FLOAT, [1, 1, 2, 2])], [vi("y", TensorProto.FLOAT, None)],
    [t16, numpy_helper.from_array(np.array([1, 1, 2, 1], np.float32), "sc")]))
typed = helper.make_tensor("t", TensorProto.INT32, [3], [1, 2, 3])
ext = helper.make_tensor("e", TensorProto.FLOAT, [2], [0.0, 0.0])
ext.ClearField("float_data"); ext.data_location = TensorProto.EXTERNAL
ext.external_data.add(key="location", value="weights.bin"); ext.external_data.add(key="offset", value="0")
out("onnx", "typed_and_external.onnx", model(
    [helper.make_node("Cast", ["t"], ["tf"], to=TensorProto.FLOAT),
     helper.make_node("Concat", ["tf", "e"], ["y"], axis=0)],
    [], [vi("y", TensorProto.FLOAT, [5])], [typed, ext],
    value_info=[vi("tf", TensorProto.FLOAT, [3])]))
m = onnx.load_from_string(model([helper.make_node("Identity", ["x"], ["y"])],
                                [vi("x", TensorProto.FLOAT, [1])], [vi("y", TensorProto.FLOAT, [1])]))
helper.set_model_props(m, {"author": "seed", "kind": "identity"})
out("onnx", "metadata_identity.onnx", m.SerializeToString())

# Multipart: Content-Type line, "\n", body (the fuzz-multipart input layout).
def mp(ctype, body):
    return ctype.encode() + b"\n" + body
crlf = b"\r\n"
two = (b"--XyZ\r\nContent-Disposition: form-data; name=\"source\"; filename=\"a.png\"\r\n"
       b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nabc\r\n"
       b"--XyZ\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\nhello\r\n--XyZ--\r\n")
out("multipart", "two_parts", mp("multipart/form-data; boundary=XyZ", two))
out("multipart", "quoted_boundary_preamble", mp('Multipart/Form-Data; charset=utf-8; boundary="a b:c"',
    b"preamble\r\n--a b:c  \r\nContent-Disposition: form-data; name=\"x\\\"y\"; filename=\"f\"\r\n\r\n"
    b"--a b:c-not-a-delimiter\r\n--a b:c--"))
out("multipart", "no_headers_part", mp("multipart/form-data;boundary=-", b"---\r\n\r\nbody\r\n-----"))
out("multipart", "empty_form", mp("multipart/form-data; boundary=q", b"--q--\r\n"))
