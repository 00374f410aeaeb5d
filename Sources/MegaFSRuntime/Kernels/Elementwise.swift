import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Broadcasting layout

/// Two operands broadcast to one output, reduced to the fewest dimensions: an outer odometer
/// over `outer` dims and a contiguous inner run whose operand strides are 0 or 1.
struct BroadcastLayout: Equatable {
    var dims: [Int]          // collapsed output dims (last one is the inner run)
    var stridesA: [Int]      // element strides of A per collapsed dim (0 where broadcast)
    var stridesB: [Int]
    var count: Int { dims.reduce(1, *) }
    var inner: Int { dims.last ?? 1 }
    var innerStrideA: Int { stridesA.last ?? 0 }
    var innerStrideB: Int { stridesB.last ?? 0 }
    var outerCount: Int { dims.dropLast().reduce(1, *) }

    init(a: [Int], b: [Int], out: [Int]) {
        let rank = out.count
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        func strides(_ s: [Int]) -> [Int] {
            var r = Array(repeating: 0, count: rank)
            var acc = 1
            for i in stride(from: rank - 1, through: 0, by: -1) {
                r[i] = (s[i] == 1 && out[i] != 1) ? 0 : acc
                acc *= s[i]
            }
            return r
        }
        let sa = strides(pa), sb = strides(pb)
        var d: [Int] = [], xa: [Int] = [], xb: [Int] = []
        for i in 0..<rank where out[i] != 1 {
            if let last = d.last, xa.last! == sa[i] * out[i], xb.last! == sb[i] * out[i] {
                d[d.count - 1] = last * out[i]
                xa[xa.count - 1] = sa[i]
                xb[xb.count - 1] = sb[i]
            } else {
                d.append(out[i]); xa.append(sa[i]); xb.append(sb[i])
            }
        }
        if d.isEmpty { d = [1]; xa = [1]; xb = [1] }
        dims = d; stridesA = xa; stridesB = xb
    }

    /// Offsets of A and B for outer index `o` (odometer over dims except the last).
    @inline(__always)
    func offsets(outer o: Int) -> (Int, Int) {
        var rem = o, offA = 0, offB = 0
        var i = dims.count - 2
        while i >= 0 {
            let d = dims[i]
            let idx = rem % d
            rem /= d
            offA += idx * stridesA[i]
            offB += idx * stridesB[i]
            i -= 1
        }
        return (offA, offB)
    }
}

// MARK: - Binary operators

protocol BinaryFn { static func apply(_ x: Float, _ y: Float) -> Float }
struct AddFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x + y } }
struct SubFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x - y } }
struct MulFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x * y } }
struct DivFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x / y } }
struct MaxFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x.isNaN || y.isNaN ? .nan : Swift.max(x, y) } }
struct MinFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x.isNaN || y.isNaN ? .nan : Swift.min(x, y) } }
struct PowFn: BinaryFn { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { powf(x, y) } }

@inline(__always)
func binaryRun<F: BinaryFn>(_: F.Type, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                            _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    switch (sa, sb) {
    case (1, 1): for i in 0..<n { o[i] = F.apply(a[i], b[i]) }
    case (1, 0): let y = b[0]; for i in 0..<n { o[i] = F.apply(a[i], y) }
    case (0, 1): let x = a[0]; for i in 0..<n { o[i] = F.apply(x, b[i]) }
    default: let v = F.apply(a[0], b[0]); for i in 0..<n { o[i] = v }
    }
}

enum BinaryKind: String {
    case add = "Add", sub = "Sub", mul = "Mul", div = "Div", pow = "Pow", max = "Max", min = "Min"
}

/// Float32 binary elementwise operator with NumPy broadcasting on raw buffers.
final class BinaryKernel: RuntimeKernel {
    let kind: BinaryKind
    let a: Int, b: Int, out: Int
    let layout: BroadcastLayout
    let inPlaceInput: Int?
    /// Pow with a constant scalar exponent of 2, 0.5, 1, -1, -0.5 runs without powf.
    let powExponent: Float?
    var kernelName: String { "binary" }
    var aliasing: Aliasing { inPlaceInput.map { .inPlace(input: $0) } ?? .none }

    init(kind: BinaryKind, a: ValueDesc, b: ValueDesc, out: ValueDesc) {
        self.kind = kind
        self.a = a.slot; self.b = b.slot; self.out = out.slot
        layout = BroadcastLayout(a: a.shape, b: b.shape, out: out.shape)
        if a.shape == out.shape && a.constant == nil { inPlaceInput = 0 }
        else if b.shape == out.shape && b.constant == nil { inPlaceInput = 1 }
        else { inPlaceInput = nil }
        if kind == .pow, let c = b.constant, c.elementCount == 1 { powExponent = c.floats[0] } else { powExponent = nil }
    }

    func run(_ ctx: KernelContext) throws {
        let pa = UnsafePointer(ctx.f32(a)), pb = UnsafePointer(ctx.f32(b)), po = ctx.f32(out)
        let layout = self.layout
        let inner = layout.inner, outer = layout.outerCount
        let sa = layout.innerStrideA, sb = layout.innerStrideB
        let kind = self.kind, exponent = powExponent
        let body: (Int, Int, Int) -> Void = { o, lo, hi in
            let (oa, ob) = outer == 1 ? (0, 0) : layout.offsets(outer: o)
            let n = hi - lo
            let xa = pa + oa + lo * sa, xb = pb + ob + lo * sb, xo = po + o * inner + lo
            switch kind {
            case .add: binaryRun(AddFn.self, xa, sa, xb, sb, xo, n)
            case .sub: binaryRun(SubFn.self, xa, sa, xb, sb, xo, n)
            case .mul: binaryRun(MulFn.self, xa, sa, xb, sb, xo, n)
            case .div: binaryRun(DivFn.self, xa, sa, xb, sb, xo, n)
            case .max: binaryRun(MaxFn.self, xa, sa, xb, sb, xo, n)
            case .min: binaryRun(MinFn.self, xa, sa, xb, sb, xo, n)
            case .pow:
                if let e = exponent, sb == 0 {
                    switch e {
                    case 2: for i in 0..<n { let v = xa[i * sa]; xo[i] = v * v }
                    case 1: for i in 0..<n { xo[i] = xa[i * sa] }
                    case 0.5: for i in 0..<n { xo[i] = xa[i * sa].squareRoot() }
                    case -1: for i in 0..<n { xo[i] = 1 / xa[i * sa] }
                    case -0.5: for i in 0..<n { xo[i] = 1 / xa[i * sa].squareRoot() }
                    default: binaryRun(PowFn.self, xa, sa, xb, sb, xo, n)
                    }
                } else {
                    binaryRun(PowFn.self, xa, sa, xb, sb, xo, n)
                }
            }
        }
        if outer == 1 || outer < ctx.threads.threads {
            // Few outer rows: split each inner run.
            for o in 0..<outer {
                ctx.threads.forRanges(inner, minPerThread: 16384) { r in body(o, r.lowerBound, r.upperBound) }
            }
        } else {
            ctx.threads.forRanges(outer, minPerThread: max(1, 16384 / max(1, inner))) { r in
                for o in r { body(o, 0, inner) }
            }
        }
    }
}

// MARK: - Unary operators

enum UnaryKind {
    case relu, leakyRelu(Float), sigmoid, tanh, sqrt, reciprocal, neg, exp, abs, clip(Float, Float)
    case scale(Float)   // multiply by a constant (used by fusions)
}

@inline(__always)
func applyUnary(_ kind: UnaryKind, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    switch kind {
    case .relu: for i in 0..<n { let v = x[i]; y[i] = v > 0 ? v : (v.isNaN ? v : 0) }
    case .leakyRelu(let a): for i in 0..<n { let v = x[i]; y[i] = v >= 0 ? v : v * a }
    case .sigmoid: for i in 0..<n { y[i] = sigmoid(x[i]) }
    case .tanh: for i in 0..<n { y[i] = tanhf(x[i]) }
    case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
    case .reciprocal: for i in 0..<n { y[i] = 1 / x[i] }
    case .neg: for i in 0..<n { y[i] = -x[i] }
    case .exp: for i in 0..<n { y[i] = expf(x[i]) }
    case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
    case .clip(let lo, let hi): for i in 0..<n { let v = x[i]; y[i] = v.isNaN ? v : Swift.min(Swift.max(v, lo), hi) }
    case .scale(let s): for i in 0..<n { y[i] = x[i] * s }
    }
}

@inline(__always)
func sigmoid(_ v: Float) -> Float {
    // Stable for large |v|: never overflows expf.
    if v >= 0 { return 1 / (1 + expf(-v)) }
    let e = expf(v)
    return e / (1 + e)
}

final class UnaryKernel: RuntimeKernel {
    let kind: UnaryKind
    let x: Int, y: Int, count: Int
    var kernelName: String { "unary" }
    var aliasing: Aliasing { .inPlace(input: 0) }

    init(kind: UnaryKind, x: ValueDesc, y: ValueDesc) {
        self.kind = kind; self.x = x.slot; self.y = y.slot; count = y.elementCount
    }

    func run(_ ctx: KernelContext) throws {
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y), kind = self.kind
        ctx.threads.forRanges(count, minPerThread: 16384) { r in
            applyUnary(kind, px + r.lowerBound, py + r.lowerBound, r.count)
        }
    }
}

// MARK: - Builders

enum ElementwiseBuilder {
    static func binary(_ req: KernelRequest) -> RuntimeKernel? {
        guard let kind = BinaryKind(rawValue: req.node.opType), req.allFloat32, req.inputs.count == 2,
              let a = req.inputs[0], let b = req.inputs[1], let out = req.outputs.first ?? nil,
              let shape = try? OperatorSupport.broadcast(a.shape, b.shape), shape == out.shape else { return nil }
        return BinaryKernel(kind: kind, a: a, b: b, out: out)
    }

    static func unary(_ req: KernelRequest) -> RuntimeKernel? {
        guard req.allFloat32, let x = req.input(0), let y = req.outputs.first ?? nil, x.shape == y.shape else { return nil }
        let node = req.node
        let kind: UnaryKind
        switch node.opType {
        case "Relu": kind = .relu
        case "LeakyRelu": kind = .leakyRelu(node.float("alpha") ?? 0.01)
        case "Sigmoid": kind = .sigmoid
        case "Tanh": kind = .tanh
        case "Sqrt": kind = .sqrt
        case "Reciprocal": kind = .reciprocal
        case "Neg": kind = .neg
        case "Exp": kind = .exp
        case "Abs": kind = .abs
        case "Clip":
            var lo = -Float.infinity, hi = Float.infinity
            if req.opset < 11 {
                lo = node.float("min") ?? lo; hi = node.float("max") ?? hi
            } else {
                if let d = req.input(1) { guard let c = d.constant, c.elementCount == 1 else { return nil }; lo = c.floats[0] }
                if let d = req.input(2) { guard let c = d.constant, c.elementCount == 1 else { return nil }; hi = c.floats[0] }
            }
            kind = .clip(lo, hi)
        default: return nil
        }
        return UnaryKernel(kind: kind, x: x, y: y)
    }
}
