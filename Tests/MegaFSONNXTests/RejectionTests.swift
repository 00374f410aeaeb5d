import CONNX
import CProtobufC
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

@Suite("Files that are not (whole) ONNX models")
struct FileRejectionTests {
    @Test func missingFile() {
        let path = NSTemporaryDirectory() + "/megafs-no-such-model-\(UInt64.random(in: 0...UInt64.max)).onnx"
        let error = importError(path: path)
        guard case .fileNotFound(let reported)? = error else {
            Issue.record("expected fileNotFound, got \(String(describing: error))")
            return
        }
        #expect(reported == path)
        #expect(error!.description.contains(path))
    }

    @Test func emptyFile() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/empty.onnx", [])
        guard case .emptyFile(let path)? = importError(path: dir + "/empty.onnx") else {
            Issue.record("expected emptyFile")
            return
        }
        #expect(path.hasSuffix("empty.onnx"))
        guard case .emptyFile? = importError([]) else {
            Issue.record("expected emptyFile for no bytes")
            return
        }
    }

    @Test func directoryIsNotAModel() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let message = importError(path: dir)?.description ?? ""
        #expect(message.contains(dir) && message.contains("directory"))
    }

    @Test func textFileIsNotONNX() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/notes.onnx", Array("hello, this is not a model at all\n".utf8))
        let error = importError(path: dir + "/notes.onnx")
        guard case .notONNX(let source, _)? = error else {
            Issue.record("expected notONNX, got \(String(describing: error))")
            return
        }
        #expect(source.hasSuffix("notes.onnx"))
        #expect(error!.description.contains("not an ONNX model"))
    }

    @Test func zipArchiveIsNotONNX() {
        let bytes: [UInt8] = [0x50, 0x4b, 0x03, 0x04] + [UInt8](repeating: 0xff, count: 60)
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("zip archive"))
    }

    @Test func protobufWithoutGraph() {
        // A ModelProto with only ir_version = 8.
        let message = importError([0x08, 0x08])?.description ?? ""
        #expect(message.contains("no graph"))
    }

    @Test(arguments: [0.5, 0.9, 0.999])
    func truncatedFile(fraction: Double) {
        var graph = chainGraph(["Relu"])
        graph.initializers["big"] = Tensor([Float](repeating: 0.25, count: 4096), shape: [4096])
        let bytes = serialize(graph)
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/cut.onnx", Array(bytes.prefix(Int(Double(bytes.count) * fraction))))
        let error = importError(path: dir + "/cut.onnx")
        guard case .truncated(let source, let detail)? = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
        #expect(source.hasSuffix("cut.onnx"))
        #expect(detail.contains("graph"))
    }

    @Test func wireScanVerdicts() {
        let valid = serialize(chainGraph(["Relu"]))
        #expect(valid.withUnsafeBytes { WireScan.diagnose($0) } == .wellFormed)
        let cut = Array(valid.dropLast())
        guard case .truncated = cut.withUnsafeBytes({ WireScan.diagnose($0) }) else {
            Issue.record("expected truncated")
            return
        }
        guard case .malformed = [UInt8]([0x7a, 0x01, 0x00]).withUnsafeBytes({ WireScan.diagnose($0) }) else {
            Issue.record("field 15 is not in ModelProto")
            return
        }
    }

    @Test func missingDefaultOpset() {
        var graph = chainGraph(["Relu"])
        graph.opsets = ["ai.onnx.ml": 3]
        let message = importError(serialize(graph))?.description ?? ""
        #expect(message.contains("no opset for the default ONNX domain"))
        graph.opsets = ["ai.onnx": 13]
        #expect(importError(serialize(graph)) == nil)
    }

    @Test func graphOutputWithoutType() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let y = graphProto(model).pointee.output[0]!
            onnx__type_proto__free_unpacked(y.pointee.type, nil)
            y.pointee.type = nil
        }
        let error = importError(bytes)
        guard case .invalidValueInfo(let value, _)? = error else {
            Issue.record("expected invalidValueInfo, got \(String(describing: error))")
            return
        }
        #expect(value == "y")
    }
}

@Suite("Graph structure and operators")
struct GraphRejectionTests {
    @Test func unsupportedOperatorsAreAllListedWithCounts() {
        var graph = chainGraph(["Relu", "NonMaxSuppression", "TopK", "Relu", "NonMaxSuppression"])
        graph.opsets = ["": 17]
        let options = ImportOptions(isSupported: { op, domain in op == "Relu" && domain.isEmpty })
        let error = importError(serialize(graph), options: options)
        guard case .unsupportedOperators(let ops)? = error else {
            Issue.record("expected unsupportedOperators, got \(String(describing: error))")
            return
        }
        #expect(ops == [OperatorCount(opType: "NonMaxSuppression", count: 2), OperatorCount(opType: "TopK", count: 1)])
        #expect(error!.description == "unsupported operators: NonMaxSuppression (2), TopK (1)")
        // Disabled, the same model imports.
        #expect(importError(serialize(graph), options: ImportOptions(checkOperators: false)) == nil)
    }

    @Test func defaultCheckUsesTheRegistry() {
        let graph = chainGraph(["SurelyNoSuchOperatorInMegafs"])
        let message = importError(serialize(graph), options: ImportOptions())?.description ?? ""
        #expect(message == "unsupported operators: SurelyNoSuchOperatorInMegafs (1)")
        #expect(ImportOptions.registrySupports("SurelyNoSuchOperatorInMegafs", "") == false)
        // Whatever is registered is accepted by the default check.
        for op in OperatorRegistry.supportedOperators.prefix(3) {
            #expect(importError(serialize(chainGraph([op])), options: ImportOptions()) == nil)
        }
    }

    @Test func nonDefaultDomainsAreRejected() {
        var graph = chainGraph(["FusedConv", "FusedConv"], domain: "com.microsoft")
        graph.nodes.append(Node(name: "extra", opType: "Foo", domain: "custom", inputs: ["y"], outputs: ["y2"]))
        graph.outputs = [ValueInfo(name: "y2", type: TensorType(dtype: .float32, dims: [1, 4]))]
        let error = importError(serialize(graph))
        guard case .nonDefaultDomains(let ops)? = error else {
            Issue.record("expected nonDefaultDomains, got \(String(describing: error))")
            return
        }
        #expect(ops.count == 2)
        #expect(error!.description.hasSuffix("com.microsoft.FusedConv (2), custom.Foo (1)"))
        // An inspection tool may allow them.
        let lenient = ImportOptions(checkOperators: false, allowNonDefaultDomains: true)
        #expect(importError(serialize(graph), options: lenient) == nil)
    }

    @Test func controlFlowNodes() {
        var graph = chainGraph(["Relu"])
        graph.nodes.append(Node(name: "cond_if", opType: "If", inputs: ["y"], outputs: ["y2"]))
        graph.nodes.append(Node(name: "", opType: "Loop", inputs: ["y2"], outputs: ["y3"]))
        graph.outputs = [ValueInfo(name: "y3", type: TensorType(dtype: .float32, dims: [1, 4]))]
        let bytes = editModel(serialize(graph)) { model in
            for branch in ["then_branch", "else_branch"] {
                addAttribute(nodeProto(model, 1), name: branch) { a in
                    a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH
                    a.pointee.g = mallocMessage(onnx__graph_proto__init)
                }
            }
        }
        let error = importError(bytes)
        guard case .controlFlow(let nodes)? = error else {
            Issue.record("expected controlFlow, got \(String(describing: error))")
            return
        }
        #expect(nodes.count == 2)
        #expect(error!.description.contains("'cond_if' (If)"))
        #expect(error!.description.contains("Loop(y3)"))
    }

    @Test func graphAttributeOnAnyNode() {
        let bytes = editModel(serialize(chainGraph(["Weird"]))) { model in
            addAttribute(nodeProto(model, 0), name: "body") { a in
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS
                let sub: UnsafeMutablePointer<Onnx__GraphProto>? = mallocMessage(onnx__graph_proto__init)
                a.pointee.graphs = mallocArray([sub])
                a.pointee.n_graphs = 1
            }
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("'n0' (Weird) has graph attribute 'body'"))
    }

    @Test(arguments: [(UInt32(11), "SPARSE_TENSOR"), (13, "TYPE_PROTO"), (9, "TENSORS"), (12, "SPARSE_TENSORS"),
                      (14, "TYPE_PROTOS"), (0, "UNDEFINED")])
    func unsupportedAttributeKinds(raw: UInt32, kind: String) {
        let bytes = editModel(serialize(chainGraph(["Constant"]))) { model in
            addAttribute(nodeProto(model, 0), name: "odd_value") { a in
                a.pointee.type = Onnx__AttributeProto__AttributeType(rawValue: raw)
            }
        }
        let error = importError(bytes)
        guard case .unsupportedAttribute(let node, let attribute, let reported)? = error else {
            Issue.record("expected unsupportedAttribute, got \(String(describing: error))")
            return
        }
        #expect(node == "'n0'" && attribute == "odd_value" && reported.hasPrefix(kind))
        #expect(error!.description.contains("odd_value"))
    }

    @Test func sparseInitializer() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let sparse: UnsafeMutablePointer<Onnx__SparseTensorProto> = mallocMessage(onnx__sparse_tensor_proto__init)
            let values: UnsafeMutablePointer<Onnx__TensorProto> = mallocMessage(onnx__tensor_proto__init)
            values.pointee.name = cString("sparse_w")
            sparse.pointee.values = values
            let g = graphProto(model)
            g.pointee.sparse_initializer = mallocArray([Optional(sparse)])
            g.pointee.n_sparse_initializer = 1
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("sparse") && message.contains("'sparse_w'"))
    }

    @Test func cycleIsRejected() {
        var graph = chainGraph(["A", "B"])
        graph.nodes[0].inputs = ["y", "w"]  // n0 reads n1's output, n1 reads n0's
        graph.inputs = []
        let error = importError(serialize(graph))
        guard case .invalidGraph(let message)? = error else {
            Issue.record("expected invalidGraph, got \(String(describing: error))")
            return
        }
        #expect(message.contains("cycle"))
    }

    @Test func danglingValueIsRejected() {
        var graph = chainGraph(["A"])
        graph.nodes[0].inputs.append("ghost")
        let message = importError(serialize(graph))?.description ?? ""
        #expect(message.contains("'ghost'"))
    }

    @Test func duplicateAttribute() {
        let bytes = editModel(serialize(chainGraph(["A"]))) { model in
            for _ in 0..<2 {
                addAttribute(nodeProto(model, 0), name: "alpha") { a in
                    a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                    a.pointee.has_f = 1
                }
            }
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("'alpha' twice") && message.contains("'n0'"))
    }

    @Test func operatorCountOrdering() {
        let counts = OperatorCount.tally([("b", ""), ("a", ""), ("c", ""), ("c", ""), ("x", "dom")])
        #expect(counts.map(\.description) == ["c (2)", "a (1)", "b (1)", "dom.x (1)"])
    }
}
