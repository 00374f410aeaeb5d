import CONNX
import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// A folder holding `model.onnx` whose initializer "w" (float32 [4]) is external with `keys`.
private func externalModel(_ keys: [(String, String)], in dir: String) -> String {
    let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
        makeExternal(initializerProto(model, "w"), keys)
    }
    let path = dir + "/model.onnx"
    writeFile(path, bytes)
    return path
}

private let weightBytes: [UInt8] = [Float(1), 2, 3, 4].withUnsafeBytes { Array($0) }

@Suite("External data")
struct ExternalDataTests {
    @Test func readsAtOffsetBeyondFourGigabytes() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        // A sparse file: 5 GiB + 4 KiB long, but only one page is ever written.
        let offset: Int64 = 5 << 30
        let fd = open(dir + "/big.bin", O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(offset + 4096)) == 0)
        let written = weightBytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        #expect(written == 16)
        close(fd)

        let path = externalModel([("location", "big.bin"), ("offset", String(offset)), ("length", "16")], in: dir)
        let graph = try ONNXImporter(options: anyOperator).importModel(atPath: path)
        #expect(graph.initializers["w"]?.floats == [1, 2, 3, 4])

        // Without "length" the size follows from the type and shape.
        let path2 = externalModel([("location", "big.bin"), ("offset", String(offset))], in: dir)
        #expect(try ONNXImporter(options: anyOperator).importModel(atPath: path2).initializers["w"]?.floats == [1, 2, 3, 4])

        // One byte further and the range passes the end of the file.
        let past = externalModel([("location", "big.bin"), ("offset", String(offset + 4096 - 15))], in: dir)
        let error = importError(path: past)
        guard case .externalRangeOutOfBounds(let tensor, let file, let at, let length, let size)? = error else {
            Issue.record("expected externalRangeOutOfBounds, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w" && file == "big.bin" && at == offset + 4081 && length == 16 && size == offset + 4096)
    }

    @Test func externalDataInSubfolder() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/weights", withIntermediateDirectories: true)
        writeFile(dir + "/weights/w.bin", [0, 0, 0, 0] + weightBytes)
        let path = externalModel([("location", "weights/./../weights/w.bin"), ("offset", "4"), ("length", "16"),
                                  ("checksum", "ignored")], in: dir)
        #expect(try ONNXImporter(options: anyOperator).importModel(atPath: path).initializers["w"]?.floats == [1, 2, 3, 4])
    }

    @Test(arguments: ["/etc/passwd", "../outside.bin", "sub/../../outside.bin", ""])
    func refusesUnsafeLocations(location: String) {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let path = externalModel([("location", location)], in: dir)
        let error = importError(path: path)
        guard case .unsafeExternalPath(let tensor, let reported, _)? = error else {
            Issue.record("expected unsafeExternalPath, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w" && reported == location)
        #expect(error!.description.contains("tensor 'w'"))
    }

    @Test func refusesSymlinkOutOfTheFolder() throws {
        let outside = makeTemporaryDirectory()
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir); removeTemporaryDirectory(outside) }
        writeFile(outside + "/secret.bin", weightBytes)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.bin", withDestinationPath: outside + "/secret.bin")
        let path = externalModel([("location", "link.bin")], in: dir)
        let error = importError(path: path)
        guard case .unsafeExternalPath(let tensor, let location, let reason)? = error else {
            Issue.record("expected unsafeExternalPath, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w" && location == "link.bin" && reason.contains("outside"))

        // A symlink that stays inside the folder is fine.
        writeFile(dir + "/real.bin", weightBytes)
        try FileManager.default.createSymbolicLink(atPath: dir + "/inside.bin", withDestinationPath: dir + "/real.bin")
        let ok = externalModel([("location", "inside.bin")], in: dir)
        #expect(try ONNXImporter(options: anyOperator).importModel(atPath: ok).initializers["w"]?.floats == [1, 2, 3, 4])
    }

    @Test func missingExternalFile() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let path = externalModel([("location", "nope.bin")], in: dir)
        let error = importError(path: path)
        guard case .missingExternalFile(let tensor, let file)? = error else {
            Issue.record("expected missingExternalFile, got \(String(describing: error))")
            return
        }
        #expect(tensor == "w" && file == "nope.bin")
        #expect(error!.description.contains("nope.bin"))
    }

    @Test func rangePastEndOfSmallFile() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/w.bin", Array(weightBytes.prefix(8)))
        let path = externalModel([("location", "w.bin")], in: dir)
        let message = importError(path: path)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("past the end of 'w.bin'") && message.contains("8 bytes"))
    }

    @Test func lengthKeyMustMatchType() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/w.bin", weightBytes)
        let path = externalModel([("location", "w.bin"), ("length", "12")], in: dir)
        #expect(importError(path: path)?.description == "tensor 'w': 12 bytes of external data in 'w.bin', but FLOAT[4] needs 16")
    }

    @Test(arguments: ["-4", "abc", "99999999999999999999999"])
    func badOffsetKey(offset: String) {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/w.bin", weightBytes)
        let path = externalModel([("location", "w.bin"), ("offset", offset)], in: dir)
        let message = importError(path: path)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("'offset'"))
    }

    @Test func directoryIsNotADataFile() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        let path = externalModel([("location", "sub")], in: dir)
        let message = importError(path: path)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("not a regular file"))
    }

    @Test func missingLocationKey() {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let path = externalModel([("offset", "0")], in: dir)
        let message = importError(path: path)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("'location'"))
    }

    @Test func bytesWithoutBaseDirectory() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/w.bin", weightBytes)
        let bytes = editModel(serialize(chainGraph(["Relu"]))) { model in
            makeExternal(initializerProto(model, "w"), [("location", "w.bin")])
        }
        let message = importError(bytes)?.description ?? ""
        #expect(message.contains("tensor 'w'") && message.contains("no base directory"))
        // With one, it loads.
        let graph = try ONNXImporter(options: anyOperator).importModel(bytes: bytes, baseDirectory: dir)
        #expect(graph.initializers["w"]?.floats == [1, 2, 3, 4])
    }

    @Test func externalTensorAttribute() throws {
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        writeFile(dir + "/c.bin", weightBytes)
        var graph = chainGraph(["Relu"])
        graph.nodes.insert(Node(name: "k", opType: "Constant", inputs: [], outputs: ["k"],
                                attributes: ["value": .tensor(Tensor([0, 0, 0, 0] as [Float], shape: [4]))]), at: 0)
        let bytes = editModel(serialize(graph)) { model in
            makeExternal(nodeProto(model, 0).pointee.attribute[0]!.pointee.t!, [("location", "c.bin")])
        }
        let back = try ONNXImporter(options: anyOperator).importModel(bytes: bytes, baseDirectory: dir)
        #expect(back.nodes[0].tensor("value")?.floats == [1, 2, 3, 4])
        // And its errors name the node and attribute.
        let broken = editModel(serialize(graph)) { model in
            makeExternal(nodeProto(model, 0).pointee.attribute[0]!.pointee.t!, [("location", "../c.bin")])
        }
        let message = importError(broken, baseDirectory: dir)?.description ?? ""
        #expect(message.contains("tensor 'k.value'"))
    }
}
