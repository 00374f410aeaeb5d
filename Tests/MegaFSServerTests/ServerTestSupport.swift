import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MegaFSConverter
import MegaFSGraph
import MegaFSSwap
import NIOCore
import Testing
@testable import MegaFSServer

/// The repository root, found from this file's path (Tests/MegaFSServerTests/<file>).
let repoRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}()

/// The tiny fixture models converted once per test process into a temporary folder, as
/// Tests/MegaFSSwapTests/EndToEndTests.swift does.
let fixtureModels: Result<String, any Error> = Result {
    let dir = NSTemporaryDirectory() + "megafs-server-models-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    fixtureModelsFolder = dir
    atexit { if let dir = fixtureModelsFolder { try? FileManager.default.removeItem(atPath: dir) } }
    for name in ["encoder", "swapper-ftm", "generator"] {
        _ = try Converter.convert(onnxPath: "\(repoRoot)/fixtures/\(name)/model.onnx", outputPath: "\(dir)/\(name).mfs")
    }
    return dir
}

/// Removed when the test process exits (each run used to leave its 2 MB behind in /tmp).
nonisolated(unsafe) private var fixtureModelsFolder: String?

/// Networks loaded once per test process (loading is the slow part of starting a server).
nonisolated(unsafe) let fixtureNetworks: Result<[String: any SwapNetworks], any Error> = Result {
    try SwapEngine.load(directory: try fixtureModels.get(), types: nil, threads: 1)
}

func readyEngine() throws -> SwapEngine {
    SwapEngine(networks: try fixtureNetworks.get())
}

/// A server on the fixture models; `port` 0 so that live tests pick a free one.
func makeServer(_ adjust: (inout ServerConfiguration) -> Void = { _ in }, engine: SwapEngine? = nil) throws -> MegaFSServer {
    var config = ServerConfiguration()
    config.port = 0
    adjust(&config)
    return MegaFSServer(configuration: config, engine: try engine ?? readyEngine())
}

let quietLogger: Logger = {
    var logger = Logger(label: "megafs.test")
    logger.logLevel = .warning
    return logger
}()

func application(_ server: MegaFSServer) -> Application<RouterResponder<BasicRequestContext>> {
    server.makeApplication(logger: quietLogger)
}

func sample(_ name: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: "\(repoRoot)/examples/samples/\(name)") else {
        throw TestFailure("missing sample \(name)")
    }
    return [UInt8](data)
}

/// A 320x200 target (not square, not the generator's size), so the result's size is telling.
func wideTarget() throws -> [UInt8] {
    var image = RGBImage(width: 320, height: 200)
    for y in 0..<200 {
        for x in 0..<320 { image[x, y] = (UInt8(x * 255 / 319), UInt8(y * 255 / 199), 128) }
    }
    return try ImageIO.encodePNG(image)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A multipart/form-data body, as curl -F writes it.
struct FormBody {
    let boundary = "----megafs-test-\(UInt32.random(in: 0...UInt32.max))"
    var parts: [(name: String, filename: String?, bytes: [UInt8])] = []

    var bytes: [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            out += Array("--\(boundary)\r\n".utf8)
            let file = part.filename.map { "; filename=\"\($0)\"" } ?? ""
            out += Array("Content-Disposition: form-data; name=\"\(part.name)\"\(file)\r\n".utf8)
            out += Array("Content-Type: application/octet-stream\r\n\r\n".utf8)
            out += part.bytes
            out += Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    var headers: HTTPFields {
        var h = HTTPFields()
        h[.contentType] = contentType
        return h
    }

    var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }

    static func swap(source: [UInt8], target: [UInt8], mask: [UInt8]? = nil) -> FormBody {
        var form = FormBody()
        form.parts = [("source", "source.png", source), ("target", "target.png", target)]
        if let mask { form.parts.append(("target_mask", "labels.png", mask)) }
        return form
    }
}

/// The JSON error body's fields.
func errorBody(_ response: TestResponse) throws -> [String: String] {
    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
    let data = Data(buffer: response.body)
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: String] else {
        throw TestFailure("not a JSON object of strings: \(String(decoding: data, as: UTF8.self))")
    }
    #expect(object["error"] != nil && object["message"] != nil && object["request_id"] != nil)
    return object
}

/// Test double: the real networks, with the encoder held at a gate until `open()`.
final class GatedNetworks: SwapNetworks, @unchecked Sendable {
    let base: any SwapNetworks
    private let gate = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var _entered = 0

    init(_ base: any SwapNetworks) { self.base = base }

    /// How many encode calls reached the gate.
    var entered: Int { lock.withLock { _entered } }
    func open(_ count: Int = 16) { for _ in 0..<count { gate.signal() } }

    func encode(_ images: Tensor) throws -> (latents: Tensor, structure: Tensor) {
        lock.withLock { _entered += 1 }
        gate.wait()
        return try base.encode(images)
    }
    func swap(identity: Tensor, attributes: Tensor) throws -> Tensor { try base.swap(identity: identity, attributes: attributes) }
    func generate(structure: Tensor, latents: Tensor) throws -> Tensor { try base.generate(structure: structure, latents: latents) }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: @Sendable () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// A plain HTTP/1.1 exchange over a loopback TCP socket (`Connection: close`), on a thread of
/// its own: status, headers (lower-cased names) and body.
func rawHTTP(port: Int, request: [UInt8]) async throws -> (status: Int, headers: [String: String], body: [UInt8]) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try rawHTTPBlocking(port: port, request: request) })
        }
    }
}

/// A TCP socket connected to 127.0.0.1:port, with the given send/receive timeouts (nil: none).
func connectLoopback(port: Int, sendTimeout: timeval? = nil, receiveTimeout: timeval? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed: errno \(errno)") }
    if var t = sendTimeout { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, socklen_t(MemoryLayout<timeval>.size)) }
    if var t = receiveTimeout { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, socklen_t(MemoryLayout<timeval>.size)) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { close(fd); throw TestFailure("connect to port \(port) failed: errno \(errno)") }
    return fd
}

private func rawHTTPBlocking(port: Int, request: [UInt8]) throws -> (status: Int, headers: [String: String], body: [UInt8]) {
    let fd = try connectLoopback(port: port, receiveTimeout: timeval(tv_sec: 30, tv_usec: 0))
    defer { close(fd) }
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { throw TestFailure("send failed") }
        sent += n
    }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += chunk[0..<n]
    }
    guard let split = MultipartForm.find(Array("\r\n\r\n".utf8), in: response, from: 0) else {
        throw TestFailure("no HTTP response head in \(response.count) bytes")
    }
    let head = String(decoding: response[0..<split], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(head[0].split(separator: " ")[1]) ?? 0
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return (status, headers, Array(response[(split + 4)...]))
}

func rawSwapRequest(port: Int, form: FormBody, query: String = "") -> [UInt8] {
    let body = form.bytes
    let head = "POST /v1/swap\(query) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: \(form.contentType)\r\n" +
        "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    return Array(head.utf8) + body
}
