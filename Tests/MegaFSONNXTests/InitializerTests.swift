import CONNX
import CProtobufC
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// Rewrites an initializer from raw_data into the typed field ONNX prescribes for its type.
func moveToTypedField(_ t: UnsafeMutablePointer<Onnx__TensorProto>) {
    let raw = dropRawData(t)
    switch t.pointee.data_type {
    case 1:  // FLOAT
        let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        t.pointee.float_data = mallocArray(values)
        t.pointee.n_float_data = values.count
    case 7:  // INT64
        let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        t.pointee.int64_data = mallocArray(values)
        t.pointee.n_int64_data = values.count
    case 6, 3, 2, 9, 10:  // INT32, INT8 (sign-extended), UINT8, BOOL, FLOAT16 (bits, zero-extended)
        let values: [Int32]
        switch t.pointee.data_type {
        case 6: values = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        case 3: values = raw.map { Int32(Int8(bitPattern: $0)) }
        case 10: values = raw.withUnsafeBytes { $0.bindMemory(to: UInt16.self).map { Int32($0) } }
        default: values = raw.map { Int32($0) }
        }
        t.pointee.int32_data = mallocArray(values)
        t.pointee.n_int32_data = values.count
    default:
        fatalError("no typed field for type \(t.pointee.data_type)")
    }
}

@Suite("Initializers")
struct InitializerTests {
    @Test func typedFieldsDecodeLikeRawData() throws {
        let graph = richGraph()
        let bytes = editModel(serialize(graph)) { model in
            let g = graphProto(model)
            for i in 0..<g.pointee.n_initializer {
                let t = g.pointee.initializer[i]!
                if t.pointee.raw_data.len > 0 { moveToTypedField(t) }
            }
            // The Constant's tensor attribute too.
            let constant = nodeProto(model, 2)
            moveToTypedField(constant.pointee.attribute[0]!.pointee.t!)
        }
        // Sanity: the edit really removed raw_data.
        _ = editModel(bytes) { model in
            #expect(initializerProto(model, "w.f32").pointee.n_float_data == 6)
            #expect(initializerProto(model, "w.f32").pointee.raw_data.len == 0)
            #expect(initializerProto(model, "w.i8").pointee.n_int32_data == 4)
            #expect(initializerProto(model, "w.i64").pointee.n_int64_data == 3)
        }
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: bytes)
        expectSameGraph(back, graph)
        #expect(back.initializers["w.i8"]?.elements(as: Int8.self) == [Int8.min, 127, 0, -1])
        #expect(back.initializers["w.f16"]?.floats[0] == 1.0)
    }

    @Test func boolFromInt32DataIsNormalised() throws {
        let bytes = editModel(serialize(richGraph())) { model in
            let t = initializerProto(model, "w.bool")
            _ = dropRawData(t)
            t.pointee.int32_data = mallocArray([5, 0, -1] as [Int32])
            t.pointee.n_int32_data = 3
        }
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: bytes)
        #expect(back.initializers["w.bool"]?.elements(as: UInt8.self) == [1, 0, 1])
    }

    @Test func rawDataLengthMismatchNamesTensorAndShape() {
        var graph = chainGraph(["Relu"])
        graph.initializers["conv1.weight"] = Tensor(zeros: .float32, shape: [5, 5])  // 100 bytes
        let bytes = editModel(serialize(graph)) { model in
            setDims(initializerProto(model, "conv1.weight"), [64, 3, 7, 7])
        }
        let error = importError(bytes)
        guard case .invalidTensor(let tensor, _)? = error else {
            Issue.record("expected invalidTensor, got \(String(describing: error))")
            return
        }
        #expect(tensor == "conv1.weight")
        #expect(error?.description == "tensor 'conv1.weight': 100 bytes of raw data, but FLOAT[64,3,7,7] needs 37632")
    }

    @Test func typedFieldCountMismatch() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let t = initializerProto(model, "w")
            _ = dropRawData(t)
            t.pointee.float_data = mallocArray([1, 2, 3] as [Float])
            t.pointee.n_float_data = 3
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message == "tensor 'w': 3 float_data values, but FLOAT[4] needs 4")
    }

    @Test func typedFieldOfWrongType() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let t = initializerProto(model, "w")
            _ = dropRawData(t)
            t.pointee.int64_data = mallocArray([1, 2, 3, 4] as [Int64])
            t.pointee.n_int64_data = 4
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("int64_data") && message.contains("FLOAT[4]"))
    }

    @Test func dataInTwoPlaces() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            let t = initializerProto(model, "w")
            t.pointee.float_data = mallocArray([1, 2, 3, 4] as [Float])
            t.pointee.n_float_data = 4
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("raw_data and float_data"))
    }

    @Test func missingData() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            _ = dropRawData(initializerProto(model, "w"))
        }
        #expect(importError(bytes)?.description == "tensor 'w': has no data, but FLOAT[4] needs 16 bytes")
    }

    @Test func negativeDimension() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            setDims(initializerProto(model, "w"), [-1, 4])
        }
        let error = importError(bytes)
        guard case .invalidDimension(let tensor, let detail)? = error else {
            Issue.record("expected invalidDimension, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w")
        #expect(detail.contains("negative"))
    }

    @Test(arguments: [[1 << 20, 1 << 20] as [Int64], [1 << 40, 1 << 40, 1 << 40], [Int64.max, 2]])
    func absurdShape(dims: [Int64]) {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            setDims(initializerProto(model, "w"), dims)
        }
        let error = importError(bytes)
        guard case .invalidDimension(let tensor, let detail)? = error else {
            Issue.record("expected invalidDimension, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w")
        #expect(detail.contains("\(ONNXImporter.maxElementCount)"))
    }

    @Test func largestAllowedShapeIsOnlyCheckedAgainstData() {
        // Exactly at the limit the shape is fine; the (tiny) data then fails the length check.
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            setDims(initializerProto(model, "w"), [1 << 17, 1 << 17])
        }
        guard case .invalidTensor(let tensor, _)? = importError(bytes) else {
            Issue.record("expected invalidTensor")
            return
        }
        #expect(tensor == "w")
    }

    @Test func tooHighRank() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            setDims(initializerProto(model, "w"), [Int64](repeating: 1, count: ONNXImporter.maxRank + 1))
        }
        guard case .invalidDimension(let tensor, _)? = importError(bytes) else {
            Issue.record("expected invalidDimension")
            return
        }
        #expect(tensor == "w")
    }

    @Test(arguments: [(Int32(11), "DOUBLE"), (16, "BFLOAT16"), (8, "STRING"), (0, "UNDEFINED"), (40, "type code 40")])
    func unsupportedInitializerType(code: Int32, name: String) {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            initializerProto(model, "w").pointee.data_type = code
        }
        let error = importError(bytes)
        guard case .unsupportedDataType(let value, let reported)? = error else {
            Issue.record("expected unsupportedDataType, got \(String(describing: error))")
            return
        }
        #expect(value == "w" && reported == code)
        #expect(error!.description.contains("'w' has data type \(name)"))
    }

    @Test func unsupportedInputType() {
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            graphProto(model).pointee.input[0]!.pointee.type.pointee.tensor_type.pointee.elem_type = 11
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("'x'") && message.contains("DOUBLE"))
    }

    @Test func duplicateInitializer() {
        var graph = chainGraph(["Relu"])
        graph.initializers["v"] = Tensor([1] as [Float], shape: [1])
        let bytes = editModel(serialize(graph)) { model in
            let t = initializerProto(model, "v")
            free(t.pointee.name)
            t.pointee.name = cString("w")
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("'w'") && message.contains("twice"))
    }

    @Test func zeroElementTensorWithoutData() throws {
        var graph = chainGraph(["Relu"])
        graph.initializers["nothing"] = Tensor(zeros: .int64, shape: [3, 0])
        let bytes = editModel(serialize(graph)) { model in
            _ = dropRawData(initializerProto(model, "nothing"))
        }
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: bytes)
        #expect(back.initializers["nothing"]?.shape == [3, 0])
    }
}
