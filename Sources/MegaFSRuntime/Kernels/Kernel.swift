import MegaFSGraph

/// What a kernel sees while it runs: the address of every value of the plan, its scratch
/// memory, the thread partition and the GEMM backend.
struct KernelContext {
    let addresses: UnsafeMutablePointer<UnsafeMutableRawPointer>
    let scratch: UnsafeMutableRawPointer
    let threads: ThreadPartition
    let gemm: any GemmBackend

    @inline(__always) func raw(_ slot: Int) -> UnsafeMutableRawPointer { addresses[slot] }
    @inline(__always) func f32(_ slot: Int) -> UnsafeMutablePointer<Float> {
        addresses[slot].assumingMemoryBound(to: Float.self)
    }
    @inline(__always) func scratchF32(offset bytes: Int = 0) -> UnsafeMutablePointer<Float> {
        (scratch + bytes).assumingMemoryBound(to: Float.self)
    }
}

/// How a kernel's output relates to its first input's memory.
enum Aliasing: Equatable {
    case none
    /// The output is the input's bytes unchanged (Reshape and friends): no kernel work.
    case view(input: Int)
    /// The kernel may write its output over this input (same byte count) when the planner finds
    /// the input dead afterwards.
    case inPlace(input: Int)
}

/// One step of a plan.
protocol RuntimeKernel: AnyObject {
    /// A short name for profiles ("conv(im2col)", "reference", ...).
    var kernelName: String { get }
    /// Scratch bytes per run, valid only during this step.
    var scratchBytes: Int { get }
    var aliasing: Aliasing { get }
    /// The slot of a float weight input this kernel does not read because it multiplies with
    /// the int8 weight directly (dynamic int8 mode): its DequantizeLinear step can be dropped.
    var skipsFloatWeight: Int? { get }
    /// Floating-point operations of one run (a multiply-add counts 2), for profiles' GFLOP/s;
    /// 0 where not counted (data movement, elementwise, reference kernels).
    var flops: Double { get }
    func run(_ ctx: KernelContext) throws
}

extension RuntimeKernel {
    var flops: Double { 0 }
    var scratchBytes: Int { 0 }
    var aliasing: Aliasing { .none }
    var skipsFloatWeight: Int? { nil }
}

/// A value of the plan as a kernel builder sees it.
struct ValueDesc {
    let slot: Int
    let dtype: DType
    let shape: [Int]
    /// Set when the value is a constant (initializer or folded value).
    let constant: Tensor?
    /// Set when the value is an int8 weight dequantized at run time (DequantizeLinear of
    /// initializers): kernels may use the int8 values, or precompute from `dequantized()`.
    var quantized: QuantizedConstant? = nil
    var elementCount: Int { shape.reduce(1, *) }
    var byteCount: Int { elementCount * dtype.byteSize }
}

/// What a kernel builder gets for one node.
struct KernelRequest {
    let node: Node
    let opset: Int
    /// One per node input; nil for an omitted optional input.
    let inputs: [ValueDesc?]
    /// One per node output; nil for an unused output.
    let outputs: [ValueDesc?]
    /// Multiply int8 weights with dynamically quantized int8 activations where a kernel can.
    var int8Activations = false
    /// How convolutions that could run either way are computed.
    var convAlgorithm = ConvAlgorithm.auto
    /// Bytes of an im2col (or col2im) band.
    var bandBudgetBytes = im2colBudgetBytes
    /// The session's threads, for work done while planning (packing weights).
    var threads = ThreadPartition(threads: 1)
    /// What the session holds for weights it gave back (Winograd U, packed int8).
    var heldWeights: HeldWeights? = nil

    func input(_ i: Int) -> ValueDesc? { i < inputs.count ? inputs[i] : nil }
    var allFloat32: Bool {
        inputs.allSatisfy { $0 == nil || $0!.dtype == .float32 } &&
            outputs.allSatisfy { $0 == nil || $0!.dtype == .float32 }
    }
}

/// Runs the operator's reference kernel from MegaFSGraph: the fallback for every operator
/// without a fast kernel. Inputs are copied into tensors (constants are used as they are),
/// the result is checked against the planned shape and copied to the output slot.
final class ReferenceKernel: RuntimeKernel {
    let node: Node
    let op: any Operator.Type
    let opset: Int
    let inputs: [ValueDesc?]
    let outputs: [ValueDesc?]
    var kernelName: String { "reference" }

    init(request: KernelRequest, op: any Operator.Type) {
        node = request.node
        self.op = op
        opset = request.opset
        inputs = request.inputs
        outputs = request.outputs
    }

    func run(_ ctx: KernelContext) throws {
        let tensors: [Tensor?] = inputs.map { desc in
            guard let desc else { return nil }
            if let c = desc.constant { return c }
            let storage = TensorStorage(copying: UnsafeRawBufferPointer(start: ctx.raw(desc.slot), count: desc.byteCount))
            return Tensor(dtype: desc.dtype, shape: desc.shape, storage: storage)
        }
        let results: [Tensor]
        do {
            results = try op.evaluate(node, inputs: tensors, opset: opset)
        } catch {
            throw RuntimeError.kernel(node: node.displayName, "\(error)")
        }
        for (i, out) in outputs.enumerated() {
            guard let out else { continue }
            guard i < results.count else {
                throw RuntimeError.kernel(node: node.displayName, "reference kernel returned \(results.count) outputs")
            }
            let r = results[i]
            guard r.shape == out.shape, r.dtype == out.dtype else {
                throw RuntimeError.kernel(node: node.displayName,
                    "output \(i) is \(r.dtype.name)\(r.shape), planned \(out.dtype.name)\(out.shape)")
            }
            if r.byteCount > 0 { ctx.raw(out.slot).copyMemory(from: r.storage.pointer, byteCount: r.byteCount) }
        }
    }
}

/// No work: the output is a view of the input's bytes.
final class ViewKernel: RuntimeKernel {
    var kernelName: String { "view" }
    var aliasing: Aliasing { .view(input: 0) }
    func run(_ ctx: KernelContext) throws {}
}

/// Copies the input's bytes to the output (a view whose output must own its memory).
final class CopyKernel: RuntimeKernel {
    let src: Int, dst: Int, bytes: Int
    var kernelName: String { "copy" }
    init(src: Int, dst: Int, bytes: Int) { self.src = src; self.dst = dst; self.bytes = bytes }
    func run(_ ctx: KernelContext) throws {
        if bytes > 0 && ctx.raw(src) != ctx.raw(dst) { ctx.raw(dst).copyMemory(from: ctx.raw(src), byteCount: bytes) }
    }
}
