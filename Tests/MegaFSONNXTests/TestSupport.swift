import CONNX
import CProtobufC
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// Accepts every operator: tests must not depend on which operators are registered.
let anyOperator = ImportOptions(checkOperators: false)

/// A fresh empty folder under the temporary directory; removed by `removeTemporaryDirectory`.
func makeTemporaryDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "/megafs-onnx-XXXXXX").utf8CString)
    let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(result != nil, "mkdtemp failed")
    return String(cString: template)
}

func removeTemporaryDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// Imports `bytes`, expecting failure, and returns the error (nil if it imported, or threw
/// something other than `ONNXError`).
func importError(_ bytes: [UInt8], options: ImportOptions = anyOperator, baseDirectory: String? = nil) -> ONNXError? {
    do {
        _ = try ONNXImporter(options: options).importModel(bytes: bytes, baseDirectory: baseDirectory)
        return nil
    } catch let error as ONNXError {
        return error
    } catch {
        return nil
    }
}

func importError(path: String, options: ImportOptions = anyOperator) -> ONNXError? {
    do {
        _ = try ONNXImporter(options: options).importModel(atPath: path)
        return nil
    } catch let error as ONNXError {
        return error
    } catch {
        return nil
    }
}

// MARK: - Editing serialized models through the protobuf-c API

/// Unpacks `bytes`, lets `edit` change the message in place, packs it again. Anything `edit`
/// puts into the message must come from `malloc` (see `cString`, `mallocArray`), since
/// `free_unpacked` frees it.
func editModel(_ bytes: [UInt8], _ edit: (UnsafeMutablePointer<Onnx__ModelProto>) -> Void) -> [UInt8] {
    let model = bytes.withUnsafeBufferPointer { onnx__model_proto__unpack(nil, $0.count, $0.baseAddress) }!
    defer { onnx__model_proto__free_unpacked(model, nil) }
    edit(model)
    let size = onnx__model_proto__get_packed_size(model)
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        count = onnx__model_proto__pack(model, buffer.baseAddress)
    }
}

func cString(_ s: String) -> UnsafeMutablePointer<CChar> { strdup(s)! }

func mallocArray<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
    guard !values.isEmpty else { return nil }
    let pointer = malloc(values.count * MemoryLayout<T>.stride)!.bindMemory(to: T.self, capacity: values.count)
    for (i, v) in values.enumerated() { (pointer + i).initialize(to: v) }
    return pointer
}

func mallocMessage<T>(_ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
    let pointer = malloc(MemoryLayout<T>.stride)!.bindMemory(to: T.self, capacity: 1)
    initialize(pointer)
    return pointer
}

func graphProto(_ model: UnsafeMutablePointer<Onnx__ModelProto>) -> UnsafeMutablePointer<Onnx__GraphProto> {
    model.pointee.graph!
}

func initializerProto(_ model: UnsafeMutablePointer<Onnx__ModelProto>, _ name: String) -> UnsafeMutablePointer<Onnx__TensorProto> {
    let g = graphProto(model)
    for i in 0..<g.pointee.n_initializer where String(cString: g.pointee.initializer[i]!.pointee.name) == name {
        return g.pointee.initializer[i]!
    }
    fatalError("no initializer \(name)")
}

func nodeProto(_ model: UnsafeMutablePointer<Onnx__ModelProto>, _ index: Int) -> UnsafeMutablePointer<Onnx__NodeProto> {
    graphProto(model).pointee.node[index]!
}

/// Drops the tensor's raw_data (the caller then puts its data elsewhere).
func dropRawData(_ t: UnsafeMutablePointer<Onnx__TensorProto>) -> [UInt8] {
    let raw = t.pointee.raw_data
    let bytes = raw.len > 0 ? Array(UnsafeBufferPointer(start: raw.data, count: raw.len)) : []
    free(raw.data)
    t.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
    t.pointee.has_raw_data = 0
    return bytes
}

func setDims(_ t: UnsafeMutablePointer<Onnx__TensorProto>, _ dims: [Int64]) {
    free(t.pointee.dims)
    t.pointee.dims = mallocArray(dims)
    t.pointee.n_dims = dims.count
}

/// Moves the tensor's data out of the protobuf into external data keys.
func makeExternal(_ t: UnsafeMutablePointer<Onnx__TensorProto>, _ keys: [(String, String)]) {
    _ = dropRawData(t)
    let entries = keys.map { key, value -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? in
        let entry: UnsafeMutablePointer<Onnx__StringStringEntryProto> = mallocMessage(onnx__string_string_entry_proto__init)
        entry.pointee.key = cString(key)
        entry.pointee.value = cString(value)
        return entry
    }
    t.pointee.external_data = mallocArray(entries)
    t.pointee.n_external_data = entries.count
    t.pointee.has_data_location = 1
    t.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
}

/// Appends an attribute built by `build` to a node.
func addAttribute(_ n: UnsafeMutablePointer<Onnx__NodeProto>, name: String,
                  _ build: (UnsafeMutablePointer<Onnx__AttributeProto>) -> Void) {
    let a: UnsafeMutablePointer<Onnx__AttributeProto> = mallocMessage(onnx__attribute_proto__init)
    a.pointee.name = cString(name)
    a.pointee.has_type = 1
    build(a)
    let count = n.pointee.n_attribute + 1
    let array = realloc(n.pointee.attribute, count * MemoryLayout<UnsafeMutablePointer<Onnx__AttributeProto>?>.stride)!
        .bindMemory(to: UnsafeMutablePointer<Onnx__AttributeProto>?.self, capacity: count)
    array[count - 1] = a
    n.pointee.attribute = array
    n.pointee.n_attribute = count
}

// MARK: - Small graphs

/// One node `opType(x) -> y` per entry, chained, float32 [1,4] in and out, plus a weight "w".
func chainGraph(_ ops: [String], domain: String = "") -> Graph {
    var graph = Graph(name: "chain")
    graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1, 4]))]
    graph.initializers["w"] = Tensor([1, 2, 3, 4] as [Float], shape: [4])
    var previous = "x"
    for (i, op) in ops.enumerated() {
        let output = i == ops.count - 1 ? "y" : "t\(i)"
        graph.nodes.append(Node(name: "n\(i)", opType: op, domain: domain, inputs: [previous, "w"], outputs: [output]))
        previous = output
    }
    graph.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .float32, dims: [1, 4]))]
    return graph
}

func serialize(_ graph: Graph) -> [UInt8] {
    try! ONNXWriter().serialize(graph)
}

func float16Tensor(_ bits: [UInt16], shape: [Int]) -> Tensor {
    bits.withUnsafeBytes { try! Tensor(dtype: .float16, shape: shape, bytes: $0) }
}
