import CONNX
import CProtobufC
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// Hostile ONNX files (issue 10): each must be refused with an error naming the limit, before
/// anything proportional to what the file claims is allocated. Times are printed, not
/// asserted (the machine is shared); what is asserted is the error.
@Suite struct ONNXResourceLimitTests {
    /// Two of these make 10^12 elements.
    static let million: Int64 = 1_000_000

    // MARK: - Tensors claiming 10^12 elements

    @Test func initializerClaimingATrillionElementsWithData() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            setDims(initializerProto(model, "w"), [Self.million, Self.million])   // raw_data stays 16 bytes
        }
        expectDimensionLimit(bytes, tensor: "w", case: "initializer with data")
    }

    @Test func initializerClaimingATrillionElementsWithoutData() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let w = initializerProto(model, "w")
            _ = dropRawData(w)
            setDims(w, [Self.million, Self.million])
        }
        expectDimensionLimit(bytes, tensor: "w", case: "initializer without data")
    }

    @Test func externalInitializerClaimingATrillionElements() {
        // The shape is refused before the external file is even looked for.
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let w = initializerProto(model, "w")
            makeExternal(w, [("location", "weights.bin"), ("length", String(4 * Self.million * Self.million))])
            setDims(w, [Self.million, Self.million])
        }
        expectDimensionLimit(bytes, tensor: "w", case: "external initializer", baseDirectory: "/nonexistent")
    }

    @Test func constantAttributeClaimingATrillionElements() {
        var graph = chainGraph(["Relu"])
        graph.nodes.insert(Node(name: "c", opType: "Constant", inputs: [], outputs: ["k"],
                                attributes: ["value": .tensor(Tensor([Float(1)], shape: [1]))]), at: 0)
        let bytes = editModel(serialize(graph)) { model in
            let t = nodeProto(model, 0).pointee.attribute[0]!.pointee.t!
            setDims(t, [Self.million, Self.million])
        }
        let (error, seconds) = timed { importError(bytes) }
        report("Constant attribute tensor", seconds, error)
        guard case .invalidDimension(_, let detail)? = error else {
            Issue.record("expected invalidDimension, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("\(ONNXImporter.maxElementCount)"))
    }

    @Test(arguments: ["input", "output", "value_info"])
    func declaredShapeOfATrillionElements(role: String) {
        var graph = chainGraph(["Relu"])
        let huge = TensorType(dtype: .float32, dims: [Int(Self.million), Int(Self.million)])
        switch role {
        case "input": graph.inputs[0].type = huge
        case "output": graph.outputs[0].type = huge
        default: graph.valueTypes["y"] = huge
        }
        let (error, seconds) = timed { importError(serialize(graph)) }
        report("\(role) shape [10^6, 10^6]", seconds, error)
        guard case .invalidValueInfo(let value, let detail)? = error else {
            Issue.record("expected invalidValueInfo, got \(String(describing: error))")
            return
        }
        #expect(value == (role == "input" ? "x" : "y"))
        #expect(detail.contains("1000000,1000000") && detail.contains("\(ONNXImporter.maxElementCount)"), "\(detail)")
    }

    @Test func declaredShapeAtTheLimitIsAccepted() throws {
        // 2^17 x 2^17 = 2^34 elements exactly: a declared type allocates nothing at import.
        var graph = chainGraph(["Relu"])
        graph.valueTypes["y"] = TensorType(dtype: .float32, dims: [1 << 17, 1 << 17])
        let imported = try ONNXImporter(options: anyOperator).importModel(bytes: serialize(graph))
        #expect(imported.valueTypes["y"]?.concreteShape == [1 << 17, 1 << 17])
    }

    /// ConstantOfShape / Expand / Reshape whose target shape has 10^12 elements: the importer
    /// keeps them as nodes (nothing is materialised), and shape inference and constant
    /// folding refuse the shape instead of allocating it.
    @Test(arguments: ["ConstantOfShape", "Expand", "Reshape"])
    func shapeTargetOfATrillionElements(op: String) throws {
        var graph = Graph(name: "huge \(op)")
        graph.initializers["s"] = Tensor([Self.million, Self.million], shape: [2])
        graph.initializers["one"] = Tensor([Float(1)], shape: [1])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        let inputs = op == "ConstantOfShape" ? ["s"] : op == "Expand" ? ["one", "s"] : ["x", "s"]
        graph.nodes = [Node(name: "big", opType: op, inputs: inputs, outputs: ["y"])]
        graph.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))]

        let (imported, importSeconds) = try timed { try ONNXImporter().importModel(bytes: serialize(graph)) }
        #expect(imported.nodes.count == 1, "the importer keeps the node; it does not evaluate it")
        for (passName, pipeline) in [("shape inference", PassPipeline([ShapeInference()])), ("converter passes", .converter)] {
            var g = imported
            let (error, seconds) = timed { () -> Error? in
                do { try pipeline.run(&g); return nil } catch { return error }
            }
            report("\(op) target [10^6, 10^6], \(passName) (import \(ms(importSeconds)))", seconds, error)
            guard let e = error as? GraphError else {
                Issue.record("\(op), \(passName): expected a GraphError, got \(String(describing: error))")
                continue
            }
            let text = e.description
            #expect(text.contains("too large") || text.contains("cannot reshape"), "\(op), \(passName): \(text)")
            #expect(text.contains("1000000"), "\(op), \(passName): the message names the shape: \(text)")
        }
    }

    // MARK: - A million nodes

    @Test func aMillionNodesAreRefusedBeforeUnpacking() {
        let count = 1_000_000
        let bytes = chainModel(nodes: count)
        let (error, seconds) = timed { importError(bytes) }
        report("\(count) nodes (\(bytes.count) bytes of ONNX)", seconds, error)
        guard case .limitExceeded(_, let detail)? = error else {
            Issue.record("expected limitExceeded, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("\(count) nodes") && detail.contains("\(ONNXImporter.maxNodes)"), "\(detail)")
    }

    @Test func nodeLimitBoundary() throws {
        let over = chainModel(nodes: ONNXImporter.maxNodes + 1)
        guard case .limitExceeded(_, let detail)? = importError(over) else {
            Issue.record("expected limitExceeded one node over the limit")
            return
        }
        #expect(detail.contains("\(ONNXImporter.maxNodes + 1) nodes"))
        // Exactly at the limit the model imports (and sorts) fine.
        let (graph, seconds) = try timed { try ONNXImporter(options: anyOperator).importModel(bytes: chainModel(nodes: ONNXImporter.maxNodes)) }
        print("ResourceLimit: \(ONNXImporter.maxNodes) nodes imported in \(ms(seconds))")
        #expect(graph.nodes.count == ONNXImporter.maxNodes)
    }

    @Test func nodesSplitOverRepeatedGraphFieldsAreCountedTogether() {
        // protobuf merges a repeated occurrence of the non-repeated `graph` field, so two
        // graphs of (limit / 2 + 1) nodes each become one graph above the limit.
        let half = ONNXImporter.maxNodes / 2 + 1
        var model = modelHeader()
        for part in 0..<2 {
            model.message(7) { g in
                for i in 0..<half {
                    g.message(1) { n in n.string(1, "x"); n.string(2, "p\(part)_\(i)"); n.string(4, "Relu") }
                }
            }
        }
        guard case .limitExceeded(_, let detail)? = importError(model.bytes) else {
            Issue.record("expected limitExceeded")
            return
        }
        #expect(detail.contains("\(2 * half) nodes"))
    }

    // MARK: - Cycles

    @Test(arguments: [1, 2, 3])
    func cycleIsRefused(length: Int) {
        // n0 reads the output of n(length-1): a cycle of `length` nodes, fed by nothing else.
        var graph = chainGraph(["Relu"])
        graph.nodes = (0..<length).map { i in
            Node(name: "n\(i)", opType: "Relu", inputs: ["c\((i + length - 1) % length)"], outputs: ["c\(i)"])
        }
        graph.nodes.append(Node(name: "out", opType: "Add", inputs: ["x", "c0"], outputs: ["y"]))
        let (error, seconds) = timed { importError(serialize(graph)) }
        report("cycle of \(length) node(s)", seconds, error)
        guard case .invalidGraph(let message)? = error else {
            Issue.record("expected invalidGraph, got \(String(describing: error))")
            return
        }
        #expect(message.contains("cycle") && message.contains("n0"), "\(message)")
    }

    // MARK: - Protobuf shapes libprotobuf-c would recurse or allocate without bound for

    /// TypeProto { sequence_type { elem_type { sequence_type ... } } }: 2 messages per level.
    /// 4000 levels (34 KB) overflow the 8 MB main-thread stack inside libprotobuf-c.
    @Test(arguments: [4_000, 100_000])
    func deeplyNestedTypesAreRefused(levels: Int) {
        let type = Wire.nested(innermost: [], wrappers: Array(repeating: [(prefix: [UInt8](), field: 1), (prefix: [], field: 4)],
                                                              count: levels).flatMap { $0 })
        var model = modelHeader()
        model.message(7) { g in
            g.message(13) { v in v.string(1, "x"); v.bytes(2, type) }
        }
        let (error, seconds) = timed { importError(model.bytes) }
        report("types nested \(levels) levels (\(model.bytes.count) bytes)", seconds, error)
        guard case .limitExceeded(_, let detail)? = error else {
            Issue.record("expected limitExceeded, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("nested more than \(ONNXImporter.maxNestingDepth)"), "\(detail)")
    }

    @Test func deeplyNestedSubgraphsAreRefused() {
        // Node { attribute { g { node { attribute { g ... } } } } }: 3 messages per level.
        var attributeName = Wire(), opType = Wire()
        attributeName.string(1, "body")
        opType.string(4, "Loop")
        let level: [(prefix: [UInt8], field: Int)] = [(attributeName.bytes, 6), (opType.bytes, 5), ([], 1)]
        let graph = Wire.nested(innermost: [], wrappers: Array(repeating: level, count: 20_000).flatMap { $0 })
        var model = modelHeader()
        model.bytes(7, graph)
        let (error, seconds) = timed { importError(model.bytes) }
        report("subgraphs nested 20000 levels (\(model.bytes.count) bytes)", seconds, error)
        guard case .limitExceeded(_, let detail)? = error else {
            Issue.record("expected limitExceeded, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("nested more than"))
    }

    @Test func nestingWithinTheLimitStillGetsItsOwnError() {
        // 20 levels of sequence types: allowed by the pre-scan, then refused for what it is.
        var type = Wire()
        type.message(1) { t in t.int(1, 1) }   // tensor_type { elem_type: FLOAT }
        for _ in 0..<20 {
            var sequence = Wire()
            sequence.bytes(1, type.bytes)
            type = Wire()
            type.bytes(4, sequence.bytes)
        }
        var model = modelHeader()
        model.message(7) { g in
            g.message(11) { v in v.string(1, "x"); v.bytes(2, type.bytes) }
        }
        guard case .invalidValueInfo(let value, let detail)? = importError(model.bytes) else {
            Issue.record("expected invalidValueInfo")
            return
        }
        #expect(value == "x" && detail.contains("sequence"))
    }

    /// Repeated fields with millions of entries: libprotobuf-c allocates a pointer, a string
    /// and scan bookkeeping per entry (~60 bytes per 2-byte entry). The allocation budget
    /// (8 x the file + 64 MiB) refuses it as it unpacks, and it frees what it built.
    @Test(arguments: ["node inputs", "attribute ints", "attribute strings", "unknown fields", "empty initializers"])
    func millionsOfRepeatedEntriesAreRefused(kind: String) {
        let entries = 8_000_000
        var model = modelHeader()
        model.message(7) { g in
            g.message(1) { n in
                n.string(2, "y"); n.string(4, "Relu")
                switch kind {
                case "node inputs":
                    for _ in 0..<entries { n.string(1, "") }
                case "attribute ints":
                    n.message(5) { a in
                        a.string(1, "k"); a.int(20, 7)
                        for _ in 0..<entries { a.int(8, 1) }   // unpacked: tag + value per entry
                    }
                case "attribute strings":
                    n.message(5) { a in
                        a.string(1, "k"); a.int(20, 8)
                        for _ in 0..<entries { a.string(9, "") }
                    }
                case "unknown fields":
                    for _ in 0..<entries { n.int(99, 0) }
                default:
                    break
                }
            }
            if kind == "empty initializers" {
                for _ in 0..<entries { g.bytes(5, []) }
            }
        }
        let (error, seconds) = timed { importError(model.bytes) }
        report("\(entries) \(kind) (\(model.bytes.count) bytes)", seconds, error)
        guard case .limitExceeded(_, let detail)? = error else {
            Issue.record("\(kind): expected limitExceeded, got \(String(describing: error))")
            return
        }
        let budget = ONNXImporter.protobufMemoryBudget(forBytes: model.bytes.count)
        #expect(detail.contains("memory") && detail.contains("\(budget)"), "\(detail)")
    }

    @Test func largeButProportionateRepeatedFieldsStillImport() throws {
        // 100k attribute ints and a 1 MiB tensor: well within the budget.
        var graph = chainGraph(["Relu"])
        graph.nodes[0].attributes["many"] = .ints(Array(0..<100_000))
        graph.initializers["big"] = Tensor([Float](repeating: 0.5, count: 1 << 18), shape: [1 << 18])
        graph.nodes[0].inputs.append("big")
        let imported = try ONNXImporter(options: anyOperator).importModel(bytes: serialize(graph))
        guard case .ints(let many)? = imported.nodes[0].attributes["many"] else {
            Issue.record("attribute 'many' missing")
            return
        }
        #expect(many == Array(0..<100_000))
        #expect(imported.initializers["big"]?.elementCount == 1 << 18)
    }

    @Test func fixturesImportWithTheBudgetInPlace() throws {
        // The fixtures need 1.3-3x their size from libprotobuf-c (measured with a counting
        // allocator); the budget must not refuse any of them.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures").path
        for name in ["encoder", "generator", "swapper-ftm", "swapper-injection", "swapper-lcr"] {
            let path = "\(root)/\(name)/model.onnx"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let graph = try ONNXImporter(options: anyOperator).importModel(atPath: path)
            #expect(!graph.nodes.isEmpty, "\(name)")
        }
    }

    // MARK: - Helpers

    private func expectDimensionLimit(_ bytes: [UInt8], tensor: String, case label: String, baseDirectory: String? = nil,
                                      sourceLocation: SourceLocation = #_sourceLocation) {
        let (error, seconds) = timed { importError(bytes, baseDirectory: baseDirectory) }
        report("\(label) [10^6, 10^6]", seconds, error)
        guard case .invalidDimension(let name, let detail)? = error else {
            Issue.record("expected invalidDimension, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(name == tensor, sourceLocation: sourceLocation)
        #expect(detail.contains("1000000, 1000000") && detail.contains("\(ONNXImporter.maxElementCount)"), "\(detail)",
                sourceLocation: sourceLocation)
    }

    /// ModelProto header fields: ir_version 8, opset 17.
    private func modelHeader() -> Wire {
        var model = Wire()
        model.int(1, 8)
        model.message(8) { o in o.string(1, ""); o.int(2, 17) }
        return model
    }

    /// x -> Relu -> ... -> y, `nodes` long, written straight to the wire (the ONNX writer
    /// would first build it all as protobuf-c structs).
    private func chainModel(nodes: Int) -> [UInt8] {
        var model = modelHeader()
        model.message(7) { g in
            g.string(2, "chain")
            for i in 0..<nodes {
                g.message(1) { n in
                    n.string(1, i == 0 ? "x" : "t\(i - 1)")
                    n.string(2, i == nodes - 1 ? "y" : "t\(i)")
                    n.string(4, "Relu")
                }
            }
            for (field, name) in [(11, "x"), (12, "y")] {
                g.message(field) { v in
                    v.string(1, name)
                    v.message(2) { t in t.message(1) { tt in tt.int(1, 1); tt.message(2) { s in s.message(1) { d in d.int(1, 4) } } } }
                }
            }
        }
        return model.bytes
    }
}

/// A minimal protobuf wire encoder, for inputs no well-behaved writer produces.
struct Wire {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }
    mutating func int(_ field: Int, _ value: Int64) { tag(field, 0); varint(UInt64(bitPattern: value)) }
    mutating func bytes(_ field: Int, _ payload: [UInt8]) {
        tag(field, 2)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ build: (inout Wire) -> Void) {
        var inner = Wire()
        build(&inner)
        bytes(field, inner.bytes)
    }

    /// `innermost` wrapped in messages, innermost wrapper first: each level is
    /// `prefix + field(previous level)`. Built in linear time (lengths first, then the
    /// headers outside in), where wrapping one level at a time would copy quadratically.
    static func nested(innermost: [UInt8], wrappers: [(prefix: [UInt8], field: Int)]) -> [UInt8] {
        var headers: [[UInt8]] = []
        headers.reserveCapacity(wrappers.count)
        var length = innermost.count
        for w in wrappers {
            var header = Wire()
            header.bytes = w.prefix
            header.tag(w.field, 2)
            header.varint(UInt64(length))
            length += header.bytes.count
            headers.append(header.bytes)
        }
        var out: [UInt8] = []
        out.reserveCapacity(length)
        for header in headers.reversed() { out.append(contentsOf: header) }
        out.append(contentsOf: innermost)
        return out
    }
}

func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

func report(_ what: String, _ seconds: Double, _ error: Any?) {
    print("ResourceLimit: \(what): \(ms(seconds)): \(error.map { "\($0)" }.map { String($0.prefix(220)) } ?? "no error")")
}
