import CONNX
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// A graph using every dtype, every attribute kind, every kind of dimension, a Constant node,
/// an omitted optional input, two opset domains and metadata.
func richGraph() -> Graph {
    var graph = Graph(name: "rich")
    graph.initializers = [
        // -0, a NaN with a payload and infinities must survive bit for bit.
        "w.f32": Tensor([1.5, -0.0, Float(bitPattern: 0x7fc0_0001), .infinity, -.infinity, 1e-40], shape: [2, 3]),
        "w.f16": float16Tensor([0x3c00, 0xfc00, 0x7e01, 0x8000], shape: [4]),
        "w.i64": Tensor([Int64.min, -1, Int64.max], shape: [3]),
        "w.i32": Tensor([Int32.min, 7, Int32.max], shape: [3, 1]),
        "w.i8": Tensor([Int8.min, 127, 0, -1] as [Int8], shape: [2, 2]),
        "w.u8": Tensor([0, 255, 17] as [UInt8], shape: [3]),
        "w.bool": Tensor([true, false, true], shape: [3]),
        "w.empty": Tensor(zeros: .float32, shape: [0, 4]),
        "w.scalar": Tensor(scalar: Float(3.5)),
    ]
    graph.inputs = [
        ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [.symbolic("batch"), .fixed(3), .unknown, .fixed(0)])),
        ValueInfo(name: "mask", type: TensorType(dtype: .bool, shape: nil)),
        ValueInfo(name: "ids", type: TensorType(dtype: .int64, shape: [])),
    ]
    let attributes: [String: Attribute] = [
        "alpha": .float(0.25),
        "neg_zero": .float(-0.0),
        "axis": .int(-3),
        "big": .int(Int(Int64.max)),
        "mode": .string("héllo"),
        "empty_string": .string(""),
        "value": .tensor(Tensor([2, -5] as [Int64], shape: [2])),
        "scales": .floats([1.5, -0.0, .greatestFiniteMagnitude]),
        "pads": .ints([1, -2, Int(Int64.min)]),
        "no_ints": .ints([]),
        "names": .strings(["a", "", "ü"]),
    ]
    graph.nodes = [
        Node(name: "alpha", opType: "Alpha", inputs: ["x", "w.f32"], outputs: ["a"], attributes: attributes),
        // An independent branch listed between: the order must be kept as given.
        Node(name: "delta", opType: "Delta", inputs: ["ids", "w.i64"], outputs: ["z"]),
        Node(name: "const", opType: "Constant", inputs: [], outputs: ["c"],
             attributes: ["value": .tensor(float16Tensor([0x4000, 0x4200], shape: [2]))]),
        Node(name: "", opType: "Beta", inputs: ["a", "", "c", "w.f16", "w.i32", "w.i8", "w.u8", "w.bool", "w.empty", "w.scalar"],
             outputs: ["b", ""]),
        Node(name: "gamma", opType: "Gamma", domain: "ai.onnx", inputs: ["b", "mask"], outputs: ["y"]),
    ]
    graph.outputs = [
        ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: [.symbolic("batch"), .fixed(3)])),
        ValueInfo(name: "z", type: TensorType(dtype: .int64, shape: [])),
    ]
    graph.valueTypes = [
        "a": TensorType(dtype: .float32, shape: [.symbolic("batch"), .unknown]),
        "b": TensorType(dtype: .float16, shape: nil),
        "c": TensorType(dtype: .float16, dims: [2]),
    ]
    graph.opsets = ["": 17, "ai.onnx.ml": 3]
    graph.metadata = ["onnx.doc_string": "a test model", "onnx.metadata.author": "me", "kind": "encoder",
                      "onnx.model_version": "12", "onnx.graph_doc_string": "graph doc"]
    return graph
}

func expectSameGraph(_ back: Graph, _ graph: Graph) {
    #expect(back.name == graph.name)
    #expect(Set(back.initializers.keys) == Set(graph.initializers.keys))
    for (name, tensor) in graph.initializers {
        let other = back.initializers[name]
        #expect(other?.isIdentical(to: tensor) == true, "initializer \(name)")
        #expect(other.map { Int(bitPattern: $0.storage.pointer) % TensorStorage.alignment } == 0)
    }
    #expect(back.nodes.map(\.name) == graph.nodes.map(\.name))
    #expect(back.nodes.map(\.opType) == graph.nodes.map(\.opType))
    #expect(back.nodes.map(\.domain) == graph.nodes.map(\.domain))
    #expect(back.nodes.map(\.inputs) == graph.nodes.map(\.inputs))
    #expect(back.nodes.map(\.outputs) == graph.nodes.map(\.outputs))
    for (node, original) in zip(back.nodes, graph.nodes) {
        #expect(Set(node.attributes.keys) == Set(original.attributes.keys), "attributes of \(original.displayName)")
        for (key, value) in original.attributes {
            #expect(node.attributes[key]?.isIdentical(to: value) == true, "attribute \(key) of \(original.displayName)")
        }
    }
    #expect(back.inputs.map(\.name) == graph.inputs.map(\.name))
    #expect(back.inputs.map(\.type) == graph.inputs.map(\.type))
    #expect(back.outputs.map(\.name) == graph.outputs.map(\.name))
    #expect(back.outputs.map(\.type) == graph.outputs.map(\.type))
    #expect(back.valueTypes == graph.valueTypes)
    #expect(back.opsets == graph.opsets)
}

@Suite("Round trip Graph -> ONNX -> Graph")
struct RoundTripTests {
    @Test func inlineRoundTripPreservesEverything() throws {
        let graph = richGraph()
        let bytes = try ONNXWriter().serialize(graph)
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: bytes)
        expectSameGraph(back, graph)
        #expect(back.metadata["onnx.producer_name"] == "megafs")
        #expect(back.metadata["onnx.ir_version"] == "8")
        #expect(back.metadata["onnx.doc_string"] == "a test model")
        #expect(back.metadata["onnx.graph_doc_string"] == "graph doc")
        #expect(back.metadata["onnx.model_version"] == "12")
        #expect(back.metadata["onnx.metadata.author"] == "me")
        #expect(back.metadata["onnx.metadata.kind"] == "encoder")
        // The Constant node stays a node, its tensor an attribute.
        #expect(back.nodes.contains { $0.opType == "Constant" && $0.tensor("value")?.dtype == .float16 })
    }

    @Test func secondRoundTripIsByteIdentical() throws {
        let first = try ONNXWriter().serialize(richGraph())
        let graph = try ONNXImporter(options: anyOperator).importModel(bytes: first)
        let second = try ONNXWriter().serialize(graph)
        let identical = first == second  // (not inside #expect: it would print both byte arrays)
        #expect(identical)
    }

    @Test func writesDimensionsAsONNXDoes() throws {
        let bytes = try ONNXWriter().serialize(richGraph())
        _ = editModel(bytes) { model in
            let x = graphProto(model).pointee.input[0]!
            let shape = x.pointee.type.pointee.tensor_type.pointee.shape!
            #expect(shape.pointee.n_dim == 4)
            #expect(shape.pointee.dim[0]!.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            #expect(String(cString: shape.pointee.dim[0]!.pointee.dim_param) == "batch")
            #expect(shape.pointee.dim[1]!.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            #expect(shape.pointee.dim[1]!.pointee.dim_value == 3)
            #expect(shape.pointee.dim[2]!.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET)
            // An input of unknown rank has a tensor type without shape.
            #expect(graphProto(model).pointee.input[1]!.pointee.type.pointee.tensor_type.pointee.shape == nil)
            #expect(model.pointee.ir_version == 8)
        }
    }

    @Test func fileRoundTripWithExternalData() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        var graph = richGraph()
        graph.initializers["big"] = Tensor((0..<5000).map { Float($0) * 0.5 }, shape: [50, 100])
        let writer = ONNXWriter(options: .init(externalDataThreshold: 16))
        try writer.write(graph, to: dir + "/model.onnx")

        let dataPath = dir + "/model.onnx.data"
        let dataSize = (try FileManager.default.attributesOfItem(atPath: dataPath)[.size] as? Int) ?? 0
        let modelSize = (try FileManager.default.attributesOfItem(atPath: dir + "/model.onnx")[.size] as? Int) ?? 0
        #expect(dataSize >= 20_000 + 24)
        #expect(modelSize < 4096)

        // Large tensors are external at 4096-aligned offsets; small ones stay inline.
        let bytes = [UInt8](FileManager.default.contents(atPath: dir + "/model.onnx")!)
        _ = editModel(bytes) { model in
            let big = initializerProto(model, "big")
            #expect(big.pointee.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
            var keys: [String: String] = [:]
            for i in 0..<big.pointee.n_external_data {
                keys[String(cString: big.pointee.external_data[i]!.pointee.key)] = String(cString: big.pointee.external_data[i]!.pointee.value)
            }
            #expect(keys["location"] == "model.onnx.data")
            #expect(keys["length"] == "20000")
            #expect(Int(keys["offset"] ?? "1")! % 4096 == 0)
            let scalar = initializerProto(model, "w.scalar")
            #expect(scalar.pointee.has_raw_data != 0 && scalar.pointee.n_external_data == 0)
        }

        let back = try ONNXImporter(options: anyOperator).importModel(atPath: dir + "/model.onnx")
        expectSameGraph(back, graph)
    }

    @Test func relativeModelPathFindsExternalData() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let graph = chainGraph(["Relu"])
        try ONNXWriter(options: .init(externalDataThreshold: 1, externalDataFileName: "weights.bin"))
            .write(graph, to: dir + "/m.onnx")
        #expect(FileManager.default.fileExists(atPath: dir + "/weights.bin"))
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        let back = try ONNXImporter(options: anyOperator).importModel(atPath: "m.onnx")
        #expect(back.initializers["w"]?.floats == [1, 2, 3, 4])
    }

    @Test func initializerListedAsInputIsAConstant() throws {
        var graph = chainGraph(["Relu"])
        graph.inputs.append(ValueInfo(name: "w", type: TensorType(dtype: .float32, dims: [4])))
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: serialize(graph))
        #expect(back.inputs.map(\.name) == ["x"])
        #expect(back.initializers["w"] != nil)
    }

    @Test func nodesAreSortedTopologically() throws {
        var graph = chainGraph(["A", "B", "C"])
        graph.nodes.reverse()
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: serialize(graph))
        #expect(back.nodes.map(\.opType) == ["A", "B", "C"])
    }

    @Test func irVersionFollowsOpset() throws {
        #expect(ONNXWriter.irVersion(forOpset: 13) == 8)
        #expect(ONNXWriter.irVersion(forOpset: 18) == 9)
        #expect(ONNXWriter.irVersion(forOpset: 21) == 10)
        var graph = chainGraph(["Relu"])
        graph.opsets = ["": 20]
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: serialize(graph))
        #expect(back.metadata["onnx.ir_version"] == "10")
        #expect(back.opset == 20)
    }

    @Test func serializeRejectsUnsafeExternalFileName() {
        let writer = ONNXWriter(options: .init(externalDataThreshold: 0, externalDataFileName: "../escape.bin"))
        #expect(throws: ONNXError.self) { try writer.write(chainGraph(["Relu"]), to: NSTemporaryDirectory() + "/never.onnx") }
    }
}
