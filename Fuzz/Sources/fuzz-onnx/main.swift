// ONNX import from bytes, then what the converter does with an imported graph: its passes
// (constant folding, BatchNormalization folding, dead-node removal, shape inference) and the
// model-kind recognition. Any thrown error is a correct outcome; a crash, hang or runaway
// allocation is a finding.
import MegaFSGraph
import MegaFSONNX

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard var graph = try? ONNXImporter().importModel(bytes: bytes) else { return 0 }
    _ = try? PassPipeline.converter.run(&graph)
    _ = ModelKind.recognise(graph)
    return 0
}
