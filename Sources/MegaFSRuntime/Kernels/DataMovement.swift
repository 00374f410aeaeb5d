import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

/// Copies `count` elements of `size` bytes with a source stride (elements).
@inline(__always)
func stridedCopy(_ src: UnsafeRawPointer, srcStride: Int, _ dst: UnsafeMutableRawPointer, count: Int, size: Int) {
    if srcStride == 1 { dst.copyMemory(from: src, byteCount: count * size); return }
    switch size {
    case 4:
        let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt32.self)
        for i in 0..<count { d[i] = s[i * srcStride] }
    case 8:
        let s = src.assumingMemoryBound(to: UInt64.self), d = dst.assumingMemoryBound(to: UInt64.self)
        for i in 0..<count { d[i] = s[i * srcStride] }
    default:
        for i in 0..<count { (dst + i * size).copyMemory(from: src + i * srcStride * size, byteCount: size) }
    }
}

/// Row-major odometer: the flat offset (with `strides`) of outer index `o` over `dims`.
@inline(__always)
func odometerOffset(_ o: Int, dims: [Int], strides: [Int]) -> Int {
    var rem = o, off = 0
    var i = dims.count - 1
    while i >= 0 {
        let d = dims[i]
        off += (rem % d) * strides[i]
        rem /= d
        i -= 1
    }
    return off
}

/// Concat along an axis: one block copy per input per outer index.
final class ConcatKernel: RuntimeKernel {
    let inputs: [(slot: Int, inner: Int)]   // inner bytes per outer index
    let y: Int, outer: Int, totalInner: Int
    var kernelName: String { "concat" }

    init?(inputs: [ValueDesc], y: ValueDesc, axis: Int) {
        let rank = y.shape.count
        guard rank > 0, axis >= 0, axis < rank else { return nil }
        outer = y.shape[..<axis].reduce(1, *)
        let size = y.dtype.byteSize
        self.inputs = inputs.map { ($0.slot, $0.shape[axis...].reduce(1, *) * size) }
        totalInner = self.inputs.reduce(0) { $0 + $1.inner }
        self.y = y.slot
        guard totalInner * outer == y.byteCount else { return nil }
    }

    func run(_ ctx: KernelContext) throws {
        let dst = ctx.raw(y), inputs = self.inputs, total = totalInner
        let srcs = inputs.map { ctx.raw($0.slot) }
        ctx.threads.forRanges(outer, minPerThread: max(1, 262144 / max(1, total))) { range in
            for o in range {
                var off = o * total
                for (i, input) in inputs.enumerated() {
                    if input.inner > 0 { (dst + off).copyMemory(from: srcs[i] + o * input.inner, byteCount: input.inner) }
                    off += input.inner
                }
            }
        }
    }
}

/// A strided view of the input copied out: Slice (any steps, negative too) and Transpose.
final class StridedCopyKernel: RuntimeKernel {
    let x: Int, y: Int, size: Int
    let base: Int              // element offset of the first element read
    let dims: [Int]            // output dims
    let strides: [Int]         // input element strides per output dim
    let name: String
    var kernelName: String { name }

    init(x: Int, y: Int, size: Int, base: Int, dims: [Int], strides: [Int], name: String) {
        self.x = x; self.y = y; self.size = size; self.base = base
        // Drop unit dims and merge dims that are contiguous in the input.
        var d: [Int] = [], s: [Int] = []
        for (dim, st) in zip(dims, strides) where dim != 1 {
            if let last = d.last, s.last! == st * dim {
                d[d.count - 1] = last * dim; s[s.count - 1] = st
            } else { d.append(dim); s.append(st) }
        }
        if d.isEmpty { d = [1]; s = [1] }
        self.dims = d; self.strides = s; self.name = name
    }

    func run(_ ctx: KernelContext) throws {
        let src = ctx.raw(x) + base * size, dst = ctx.raw(y)
        let inner = dims.last!, innerStride = strides.last!
        let outerDims = Array(dims.dropLast()), outerStrides = Array(strides.dropLast())
        let outer = outerDims.reduce(1, *), size = self.size
        ctx.threads.forRanges(outer, minPerThread: max(1, 65536 / max(1, inner))) { range in
            for o in range {
                let off = odometerOffset(o, dims: outerDims, strides: outerStrides)
                stridedCopy(UnsafeRawPointer(src + off * size), srcStride: innerStride, dst + o * inner * size,
                            count: inner, size: size)
            }
        }
    }

    /// ONNX Slice with constant starts/ends/axes/steps.
    static func slice(_ req: KernelRequest) -> StridedCopyKernel? {
        guard let x = req.input(0), let y = req.outputs.first ?? nil else { return nil }
        let rank = x.shape.count
        var starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if req.opset < 10 {
            guard let s = req.node.ints("starts"), let e = req.node.ints("ends") else { return nil }
            starts = s; ends = e; axes = req.node.ints("axes"); steps = nil
        } else {
            guard let s = req.input(1)?.constant, let e = req.input(2)?.constant else { return nil }
            starts = s.int64s.map { Int(clamping: $0) }; ends = e.int64s.map { Int(clamping: $0) }
            if let a = req.input(3) { guard let c = a.constant else { return nil }; axes = c.int64s.map { Int($0) } }
            if let st = req.input(4) { guard let c = st.constant else { return nil }; steps = c.int64s.map { Int(clamping: $0) } }
        }
        let ax = axes ?? Array(0..<starts.count)
        let st = steps ?? Array(repeating: 1, count: starts.count)
        guard ax.count == starts.count, ends.count == starts.count, st.count == starts.count else { return nil }
        var begin = Array(repeating: 0, count: rank), step = Array(repeating: 1, count: rank), count = x.shape
        for (i, a0) in ax.enumerated() {
            let a = a0 < 0 ? a0 + rank : a0
            guard a >= 0, a < rank, st[i] != 0 else { return nil }
            let r = SliceOperator.range(start: starts[i], end: ends[i], step: st[i], dim: x.shape[a])
            count[a] = r.count
            // One element or none: the step is irrelevant, and a huge one would overflow the stride.
            begin[a] = r.start; step[a] = r.count > 1 ? st[i] : 1
        }
        guard count == y.shape else { return nil }
        let inStrides = OperatorSupport.strides(x.shape)
        var base = 0
        for a in 0..<rank where count[a] > 0 { base += begin[a] * inStrides[a] }
        return StridedCopyKernel(x: x.slot, y: y.slot, size: x.dtype.byteSize, base: base, dims: count,
                                 strides: zip(inStrides, step).map { $0 * $1 }, name: "slice")
    }

    static func transpose(_ req: KernelRequest) -> StridedCopyKernel? {
        guard let x = req.input(0), let y = req.outputs.first ?? nil else { return nil }
        let rank = x.shape.count
        let perm = req.node.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else { return nil }
        let inStrides = OperatorSupport.strides(x.shape)
        let dims = perm.map { x.shape[$0] }
        guard dims == y.shape else { return nil }
        return StridedCopyKernel(x: x.slot, y: y.slot, size: x.dtype.byteSize, base: 0, dims: dims,
                                 strides: perm.map { inStrides[$0] }, name: "transpose")
    }
}

/// Pad in constant mode (negative pads crop): fill, then copy the kept region.
final class PadKernel: RuntimeKernel {
    let x: Int, y: Int, size: Int
    let value: Float
    let byteValue: [UInt8]
    let keptDims: [Int], inStrides: [Int], outStrides: [Int]
    let inBase: Int, outBase: Int
    let outBytes: Int
    var kernelName: String { "pad" }

    init?(x: ValueDesc, y: ValueDesc, pads: [Int], value: Tensor?) {
        let rank = x.shape.count
        guard pads.count == 2 * rank else { return nil }
        var kept: [Int] = [], inStart: [Int] = [], outStart: [Int] = []
        for a in 0..<rank {
            let b = pads[a], e = pads[a + rank]
            let s = max(0, -b), t = x.shape[a] - max(0, -e)
            kept.append(max(0, t - s)); inStart.append(s); outStart.append(max(0, b))
            guard x.shape[a] + b + e == y.shape[a] else { return nil }
        }
        self.x = x.slot; self.y = y.slot; size = x.dtype.byteSize
        let ins = OperatorSupport.strides(x.shape), outs = OperatorSupport.strides(y.shape)
        keptDims = kept; inStrides = ins; outStrides = outs
        inBase = zip(inStart, ins).map { $0 * $1 }.reduce(0, +)
        outBase = zip(outStart, outs).map { $0 * $1 }.reduce(0, +)
        outBytes = y.byteCount
        if let value, value.elementCount >= 1 {
            guard value.dtype == x.dtype else { return nil }
            self.value = x.dtype == .float32 ? value.floats[0] : 0
            byteValue = Array(value.bytes.prefix(size))
        } else {
            self.value = 0
            byteValue = Array(repeating: 0, count: size)
        }
    }

    func run(_ ctx: KernelContext) throws {
        let src = ctx.raw(x), dst = ctx.raw(y), size = self.size
        if byteValue.allSatisfy({ $0 == 0 }) {
            dst.initializeMemory(as: UInt8.self, repeating: 0, count: outBytes)
        } else if size == 4 {
            let bits = byteValue.withUnsafeBytes { $0.load(as: UInt32.self) }
            dst.assumingMemoryBound(to: UInt32.self).initialize(repeating: bits, count: outBytes / 4)
        } else {
            for i in 0..<(outBytes / size) { for j in 0..<size { dst.storeBytes(of: byteValue[j], toByteOffset: i * size + j, as: UInt8.self) } }
        }
        if keptDims.contains(0) { return }
        let inner = keptDims.last ?? 1
        let outerDims = Array(keptDims.dropLast())
        let outer = outerDims.reduce(1, *)
        let inS = Array(inStrides.dropLast()), outS = Array(outStrides.dropLast())
        let inBase = self.inBase, outBase = self.outBase
        ctx.threads.forRanges(outer, minPerThread: max(1, 65536 / max(1, inner))) { range in
            for o in range {
                let io = inBase + odometerOffset(o, dims: outerDims, strides: inS)
                let oo = outBase + odometerOffset(o, dims: outerDims, strides: outS)
                (dst + oo * size).copyMemory(from: src + io * size, byteCount: inner * size)
            }
        }
    }

    static func build(_ req: KernelRequest) -> PadKernel? {
        guard let x = req.input(0), let y = req.outputs.first ?? nil else { return nil }
        guard (req.node.string("mode") ?? "constant") == "constant" else { return nil }
        var pads: [Int]
        var value: Tensor? = nil
        if req.opset < 11 {
            guard let p = req.node.ints("pads") else { return nil }
            pads = p
            if let v = req.node.float("value"), v != 0 {
                guard x.dtype == .float32 else { return nil }
                value = Tensor(scalar: v)
            }
        } else {
            guard let p = req.input(1)?.constant else { return nil }
            pads = p.int64s.map { Int($0) }
            if let v = req.input(2) { guard let c = v.constant else { return nil }; value = c }
            if let axesDesc = req.input(3) {
                guard let c = axesDesc.constant else { return nil }
                let rank = x.shape.count
                let axes = c.int64s.map { Int($0) < 0 ? Int($0) + rank : Int($0) }
                guard pads.count == 2 * axes.count else { return nil }
                var full = Array(repeating: 0, count: 2 * rank)
                for (i, a) in axes.enumerated() {
                    guard a >= 0, a < rank else { return nil }
                    full[a] = pads[i]; full[a + rank] = pads[i + axes.count]
                }
                pads = full
            }
        }
        return PadKernel(x: x, y: y, pads: pads, value: value)
    }
}

/// Gather along an axis with int32/int64 indices (constant or computed).
final class GatherKernel: RuntimeKernel {
    let data: Int, indices: Int, y: Int
    let constantIndices: [Int]?
    let indexCount: Int, indexIs64: Bool
    let outer: Int, axisDim: Int, innerBytes: Int
    let node: String
    var kernelName: String { "gather" }

    init?(_ req: KernelRequest) {
        guard let d = req.input(0), let idx = req.input(1), let out = req.outputs.first ?? nil,
              idx.dtype == .int64 || idx.dtype == .int32 else { return nil }
        let rank = d.shape.count
        guard rank >= 1 else { return nil }
        var axis = req.node.int("axis") ?? 0
        if axis < 0 { axis += rank }
        guard axis >= 0, axis < rank else { return nil }
        guard d.shape[..<axis] + idx.shape + d.shape[(axis + 1)...] == out.shape[...] else { return nil }
        data = d.slot; indices = idx.slot; y = out.slot
        constantIndices = idx.constant.map { $0.int64s.map { Int($0) } }
        indexCount = idx.elementCount; indexIs64 = idx.dtype == .int64
        outer = d.shape[..<axis].reduce(1, *); axisDim = d.shape[axis]
        innerBytes = d.shape[(axis + 1)...].reduce(1, *) * d.dtype.byteSize
        node = req.node.displayName
    }

    func run(_ ctx: KernelContext) throws {
        var idx: [Int]
        if let c = constantIndices { idx = c } else {
            let p = ctx.raw(indices)
            idx = indexIs64 ? (0..<indexCount).map { Int(p.load(fromByteOffset: $0 * 8, as: Int64.self)) }
                            : (0..<indexCount).map { Int(p.load(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
        for i in 0..<idx.count {
            if idx[i] < 0 { idx[i] += axisDim }
            guard idx[i] >= 0 && idx[i] < axisDim else {
                throw RuntimeError.kernel(node: node, "gather index \(idx[i]) is out of range for axis of size \(axisDim)")
            }
        }
        let src = ctx.raw(data), dst = ctx.raw(y), inner = innerBytes, count = idx.count, axisDim = self.axisDim
        for o in 0..<outer {
            for (j, i) in idx.enumerated() {
                (dst + (o * count + j) * inner).copyMemory(from: src + (o * axisDim + i) * inner, byteCount: inner)
            }
        }
    }
}
