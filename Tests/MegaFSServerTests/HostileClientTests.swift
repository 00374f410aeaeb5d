import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MegaFSSwap
import NIOCore
import Testing
@testable import MegaFSServer

#if canImport(Glibc)
import Glibc
#endif

/// Issue #10, the server: hostile clients get the right 4xx/503 within the deadline, their
/// connections end, and the server still swaps afterwards. Timings and memory under real load:
/// scripts/server-attack.sh. Serialized: the timing bounds assume the tests do not compete.
@Suite(.serialized) struct HostileClientTests {
    // MARK: Bodies over the limit

    /// 1 GB announced truthfully: 413 from the Content-Length, before the body is read; the
    /// client, which keeps sending until it sees the answer, has sent a tiny part of it.
    @Test func anAnnouncedHugeBodyGets413AtOnceAndTheConnectionEnds() async throws {
        let server = try makeServer { $0.maxBodyBytes = 512 << 10 }   // room for the normal swap afterwards
        try await application(server).test(.live) { client in
            let port = client.port!
            let form = FormBody.swap(source: [1], target: [2])
            let total = 1 << 30
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "POST /v1/swap HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(total)\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .stream(total: total, chunk: 64 << 10))
            }
            #expect(outcome.status == 413, "\(outcome)")
            #expect(outcome.json["error"] == "body_too_large")
            #expect(outcome.headers["connection"] == "close")
            #expect(outcome.closed, "the server keeps the connection of a refused upload open")
            #expect(outcome.bodyBytesSent < 64 << 20, "sent \(outcome.bodyBytesSent) bytes before the answer")
            #expect(outcome.seconds < 5)
            try await expectStillSwaps(client)
        }
    }

    /// Chunked, no Content-Length: the limit applies while reading, and the rest is not read.
    @Test func aChunkedHugeBodyGets413AtTheLimit() async throws {
        let server = try makeServer { $0.maxBodyBytes = 64 << 10 }
        try await application(server).test(.live) { client in
            let port = client.port!
            let form = FormBody.swap(source: [1], target: [2])
            let total = 1 << 30
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "POST /v1/swap HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\nTransfer-Encoding: chunked\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .chunked(total: total, chunk: 16 << 10))
            }
            #expect(outcome.status == 413, "\(outcome)")
            #expect(outcome.json["error"] == "body_too_large")
            #expect(outcome.closed)
            #expect(outcome.bodyBytesSent < 64 << 20, "sent \(outcome.bodyBytesSent) bytes before the answer")
            #expect(outcome.seconds < 5)
            #expect(await eventually { await server.queue.admitted == 0 })
        }
    }

    /// A Content-Length smaller than the body: the announced bytes are the body (a truncated
    /// form, 400), the rest is not HTTP (400 and close).
    @Test func anUntruthfulContentLengthGets400AndClose() async throws {
        let server = try makeServer { $0.maxBodyBytes = 64 << 10 }
        try await application(server).test(.live) { client in
            let port = client.port!
            let form = FormBody.swap(source: [UInt8](repeating: 7, count: 200_000), target: [2])
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "POST /v1/swap HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\nContent-Length: 2000\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .bytes(form.bytes))
            }
            #expect(outcome.status == 400, "\(outcome)")
            #expect(outcome.json["error"] == "bad_multipart")
            #expect(outcome.closed)
            #expect(outcome.seconds < 5)
        }
    }

    // MARK: Slow clients

    /// Slowloris on the head: a byte every 100 ms never completes a request; the idle timeout
    /// (1 s here) counts from the connection's start, so trickling does not extend it.
    @Test func aTrickledHeadIsCutOffByTheIdleTimeout() async throws {
        let server = try makeServer { $0.idleTimeout = .seconds(1) }
        try await application(server).test(.live) { client in
            let port = client.port!
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                return connection.attack(head: [], body: .trickle(Array("POST /v1/swap HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
                                                                      + [UInt8](repeating: UInt8(ascii: "a"), count: 200),
                                                                  every: .milliseconds(100)), limit: 10)
            }
            #expect(outcome.closed, "\(outcome)")
            #expect(outcome.status == nil)
            #expect(outcome.seconds > 0.8 && outcome.seconds < 4, "closed after \(outcome.seconds) s")
            try await expectStillSwaps(client)
        }
    }

    /// Slowloris on the body of /v1/swap: 408 when the deadline, or the shorter body timeout,
    /// passes; then the connection ends and the queue place is given back.
    @Test(arguments: [(deadline: 1500, bodyTimeout: 30_000), (deadline: 20_000, bodyTimeout: 1500)])
    func aTrickledBodyGets408(limits: (deadline: Int, bodyTimeout: Int)) async throws {
        let server = try makeServer {
            $0.deadline = .milliseconds(limits.deadline); $0.bodyTimeout = .milliseconds(limits.bodyTimeout)
            $0.idleTimeout = .seconds(10)
        }
        try await application(server).test(.live) { client in
            let port = client.port!
            let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "POST /v1/swap HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(form.bytes.count)\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .trickle(form.bytes, every: .milliseconds(50)), limit: 15)
            }
            #expect(outcome.status == 408, "\(outcome)")
            #expect(outcome.json["error"] == "body_timeout")
            #expect(outcome.closed)
            #expect(outcome.seconds > 1.3 && outcome.seconds < 5, "answered after \(outcome.seconds) s")
            #expect(await eventually { await server.queue.admitted == 0 })
            try await expectStillSwaps(client)
        }
    }

    /// A body trickled to a route that never reads it: answered at once, then (rather than
    /// draining the body for as long as the client likes) the connection ends within the linger.
    @Test func aTrickledBodyToAnotherRouteDoesNotHoldTheConnection() async throws {
        let server = try makeServer { $0.idleTimeout = .seconds(10) }
        try await application(server).test(.live) { client in
            let port = client.port!
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .trickle([UInt8](repeating: 1, count: 100_000), every: .milliseconds(50)),
                                         limit: 10, keepSendingAfterAnswer: true)
            }
            #expect(outcome.status.map { (400..<500).contains($0) } == true, "\(outcome)")
            #expect(outcome.headers["connection"] == "close")
            #expect(outcome.seconds < 1, "answered after \(outcome.seconds) s")
            // The client kept sending after the answer; the server dropped the connection
            // within the linger instead of reading the body to its end (100 000 bytes = 5000 s).
            let failed = try #require(outcome.sendFailedAt, "the server still reads the body: \(outcome)")
            #expect(failed > Double(EarlyResponseCloser.lingerSeconds) - 0.5, "\(outcome)")
            #expect(failed < Double(EarlyResponseCloser.lingerSeconds) + 2, "\(outcome)")
        }
    }

    // MARK: Malformed requests

    /// Each malformed form gets 400 with a JSON error whose message names the problem.
    @Test func malformedMultipartGets400NamingTheProblem() async throws {
        let server = try makeServer()
        let png = try sample("synthetic_face.png")
        let boundary = "megafs-hostile"
        let contentType = "multipart/form-data; boundary=\(boundary)"
        func part(_ name: String, _ bytes: [UInt8], extraHeader: String = "") -> [UInt8] {
            Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"x.png\"\r\n\(extraHeader)Content-Type: image/png\r\n\r\n".utf8) + bytes + Array("\r\n".utf8)
        }
        let closing = Array("--\(boundary)--\r\n".utf8)
        let cases: [(what: String, contentType: String, body: [UInt8], code: String, words: String)] = [
            ("body with another boundary", "multipart/form-data; boundary=other-boundary",
             part("source", png) + part("target", png) + closing, "bad_multipart", "boundary"),
            ("no closing delimiter", contentType, part("source", png) + part("target", png), "bad_multipart", "closing boundary"),
            ("a field given twice", contentType, part("source", png) + part("source", png) + closing, "bad_multipart", "given twice"),
            ("8 kB of part headers", contentType,
             part("source", png, extraHeader: "X-Junk: \(String(repeating: "j", count: 8192))\r\n") + part("target", png) + closing,
             "bad_multipart", "headers are longer"),
            ("no parts at all", contentType, closing, "missing_field", "source"),
            ("empty body", contentType, [], "bad_multipart", "boundary"),
            ("no boundary parameter", "multipart/form-data", part("source", png) + closing, "bad_multipart", "no boundary"),
            ("a boundary with a forbidden character", "multipart/form-data; boundary=a<b", closing, "bad_multipart", "RFC 2046"),
            ("too many parts", contentType, (0..<20).flatMap { part("f\($0)", [1]) } + closing, "bad_multipart", "parts"),
        ]
        try await application(server).test(.router) { client in
            for c in cases {
                var headers = HTTPFields()
                headers[.contentType] = c.contentType
                let start = ContinuousClock.now
                try await client.execute(uri: "/v1/swap", method: .post, headers: headers, body: ByteBuffer(bytes: c.body)) { response in
                    #expect(response.status == .badRequest, "\(c.what): \(String(buffer: response.body))")
                    let fields = try errorBody(response)
                    #expect(fields["error"] == c.code, "\(c.what)")
                    #expect(fields["message"]?.contains(c.words) == true, "\(c.what): \(fields["message"] ?? "")")
                }
                #expect(ContinuousClock.now - start < .seconds(2), "\(c.what)")
            }
            try await expectStillSwaps(client)
        }
    }

    /// An HTTP head over the decoder's limits: 400 and the connection closed, without a JSON
    /// body (the request never reaches the router).
    @Test func aHugeHTTPHeadGets400() async throws {
        let server = try makeServer()
        try await application(server).test(.live) { client in
            let port = client.port!
            let outcome = try await onThread { () -> AttackOutcome in
                let connection = try RawConnection(port: port)
                let head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: \(String(repeating: "h", count: 200_000))\r\n\r\n"
                return connection.attack(head: Array(head.utf8), body: .bytes([]))
            }
            #expect(outcome.status == 400, "\(outcome)")
            #expect(outcome.closed)
            #expect(outcome.seconds < 5)
        }
    }

    // MARK: Decompression bombs

    /// Small files whose headers claim billions of pixels: 413 image_too_large from the header,
    /// fast, so the decoded pixels are never allocated (16 GB here would not fit).
    @Test func imageHeadersClaimingHugeSizesGet413Quickly() async throws {
        let server = try makeServer()
        let good = try sample("astronaut_face.png")
        let pngBomb = pngClaiming(width: 100_000, height: 50_000)
        var tiny = RGBImage(width: 16, height: 16)
        for y in 0..<16 { for x in 0..<16 { tiny[x, y] = (UInt8(x * 16), UInt8(y * 16), 90) } }
        let jpegBomb = try jpegClaiming(width: 65_000, height: 65_000, from: try ImageIO.encodeJPEG(tiny, quality: 90))
        #expect(pngBomb.count < 200 && jpegBomb.count < 2000)
        try await application(server).test(.router) { client in
            for (what, bomb, announced) in [("PNG", pngBomb, "100000x50000"), ("JPEG", jpegBomb, "65000x65000")] {
                for form in [FormBody.swap(source: bomb, target: good), FormBody.swap(source: good, target: bomb)] {
                    let start = ContinuousClock.now
                    try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                        #expect(response.status == .contentTooLarge, "\(what): \(String(buffer: response.body))")
                        let fields = try errorBody(response)
                        #expect(fields["error"] == "image_too_large", "\(what)")
                        #expect(fields["message"]?.contains(announced) == true, "\(what): \(fields["message"] ?? "")")
                    }
                    #expect(ContinuousClock.now - start < .seconds(2), "\(what) took \(ContinuousClock.now - start)")
                }
            }
            // A mask claiming a huge size is refused the same way.
            let masked = FormBody.swap(source: good, target: good, mask: pngBomb)
            try await client.execute(uri: "/v1/swap", method: .post, headers: masked.headers, body: masked.buffer) { response in
                #expect(response.status == .contentTooLarge, "\(String(buffer: response.body))")
            }
            #expect(await eventually { await server.queue.admitted == 0 })
            #expect(await server.queue.running == 0)
            try await expectStillSwaps(client)
        }
    }

    // MARK: Many connections

    /// 200 connections at once: 100 idle, 50 trickling a head, 50 trickling a swap body. The
    /// queue admits concurrency + queue of the uploads (408 at the deadline) and answers the
    /// rest 503 at once; idle and trickled heads are closed by the idle timeout; then a normal
    /// swap succeeds.
    @Test func twoHundredIdleOrSlowConnections() async throws {
        let server = try makeServer {
            $0.concurrency = 1; $0.queueLength = 2; $0.idleTimeout = .seconds(1); $0.deadline = .seconds(3)
        }
        try await application(server).test(.live) { client in
            let port = client.port!
            let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
            let swapHead = Array(("POST /v1/swap HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\n" +
                                  "Content-Length: \(form.bytes.count)\r\n\r\n").utf8)
            let slowHead = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + [UInt8](repeating: UInt8(ascii: "s"), count: 200)
            let start = ContinuousClock.now
            let outcomes = try await withThrowingTaskGroup(of: (String, AttackOutcome).self) { group in
                for i in 0..<200 {
                    let kind = i % 4 < 2 ? "idle" : i % 4 == 2 ? "slow head" : "slow body"
                    group.addTask {
                        let outcome = try await onThread { () -> AttackOutcome in
                            let connection = try RawConnection(port: port)
                            switch kind {
                            case "idle": return connection.attack(head: [], body: .bytes([]), limit: 15)
                            case "slow head": return connection.attack(head: [], body: .trickle(slowHead, every: .milliseconds(100)), limit: 15)
                            default: return connection.attack(head: swapHead, body: .trickle(form.bytes, every: .milliseconds(100)), limit: 15)
                            }
                        }
                        return (kind, outcome)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - start
            func of(_ kind: String) -> [AttackOutcome] { outcomes.filter { $0.0 == kind }.map(\.1) }
            for o in of("idle") + of("slow head") {
                #expect(o.closed && o.status == nil && o.seconds < 4, "\(o)")
            }
            let uploads = of("slow body")
            #expect(uploads.allSatisfy { $0.closed })
            let timedOut = uploads.filter { $0.status == 408 }, turnedAway = uploads.filter { $0.status == 503 }
            #expect(timedOut.count == 3, "\(uploads.map { $0.status ?? 0 })")
            #expect(turnedAway.count == 47, "\(uploads.map { $0.status ?? 0 })")
            #expect(turnedAway.allSatisfy { $0.json["error"] == "queue_full" && $0.seconds < 2.5 })
            #expect(timedOut.allSatisfy { $0.json["error"] == "body_timeout" && $0.seconds < 6 })
            #expect(elapsed < .seconds(12), "all connections ended after \(elapsed)")
            #expect(await eventually { await server.queue.admitted == 0 })
            try await expectStillSwaps(client)
        }
    }

    // MARK: Helpers

    func expectStillSwaps(_ client: some TestClientProtocol, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let good = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        if let port = client.port {
            // A fresh connection: the test client's own may have been closed by a short idle timeout.
            let response = try await rawHTTP(port: port, request: rawSwapRequest(port: port, form: good))
            #expect(response.status == 200, "after the attack: \(String(decoding: response.body, as: UTF8.self))",
                    sourceLocation: sourceLocation)
            return
        }
        try await client.execute(uri: "/v1/swap", method: .post, headers: good.headers, body: good.buffer) { response in
            #expect(response.status == .ok, "after the attack: \(String(buffer: response.body))", sourceLocation: sourceLocation)
        }
    }
}

// MARK: - A raw attacking client

/// What a `RawConnection.attack` saw.
struct AttackOutcome: CustomStringConvertible, Sendable {
    /// The first response's status, nil when none came.
    var status: Int?
    var headers: [String: String] = [:]
    var json: [String: String] = [:]
    /// The server closed (or reset) the connection before the attack's time limit.
    var closed = false
    /// Seconds from the start to a send failing because the server had closed the connection
    /// completely (after the end of its output, it may still read, for a while).
    var sendFailedAt: Double?
    /// Seconds from the first byte sent to the answer (or, without one, to the close).
    var seconds = 0.0
    var bodyBytesSent = 0

    var description: String {
        "status \(status.map(String.init) ?? "none"), closed \(closed), \(String(format: "%.2f", seconds)) s, " +
            "\(bodyBytesSent) body bytes sent, \(json)"
    }
}

/// A blocking loopback TCP client that sends a request head and then a body in one of several
/// hostile ways, watching for the server's answer between sends.
final class RawConnection {
    enum Body {
        case bytes([UInt8])
        /// `total` bytes of filler, `chunk` at a time, until the server answers.
        case stream(total: Int, chunk: Int)
        /// The same, with chunked transfer encoding.
        case chunked(total: Int, chunk: Int)
        /// One byte every `every`, until the server answers or closes.
        case trickle([UInt8], every: Duration)
    }

    let fd: Int32

    init(port: Int) throws {
        // A full send buffer must not block the attack.
        fd = try connectLoopback(port: port, sendTimeout: timeval(tv_sec: 0, tv_usec: 200_000))
    }

    deinit { close(fd) }

    /// Bytes sent; 0 when the send buffer is full, nil once the connection is closed or reset.
    func send(_ bytes: ArraySlice<UInt8>) -> Int? {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : nil
    }

    /// True when the server has sent something (or closed) within `milliseconds`.
    func readable(within milliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, milliseconds) > 0
    }

    /// Sends `head` and `body` as described; stops sending once the server answers (unless
    /// `keepSendingAfterAnswer`), then reads until the server closes or `limit` seconds pass
    /// since the start.
    func attack(head: [UInt8], body: Body, limit: Double = 10, keepSendingAfterAnswer: Bool = false) -> AttackOutcome {
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let c = (ContinuousClock.now - start).components
            return Double(c.seconds) + Double(c.attoseconds) / 1e18
        }
        var outcome = AttackOutcome()
        var received: [UInt8] = []
        var closed = false
        var answeredAt: Double?
        func sendFailed() {
            closed = true
            if outcome.sendFailedAt == nil { outcome.sendFailedAt = elapsed() }
        }
        /// Reads what is waiting; records the close.
        func drain(waiting milliseconds: Int32) {
            guard !closed, readable(within: milliseconds) else { return }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                received += chunk[0..<n]
                if answeredAt == nil { answeredAt = elapsed() }
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                closed = true
            }
        }
        func sendAll(_ bytes: [UInt8]) -> Bool {
            var sent = 0
            while sent < bytes.count, !closed, elapsed() < limit {
                guard let n = send(bytes[sent...]) else { sendFailed(); return false }
                sent += n
                if n == 0 { drain(waiting: 10) }
            }
            return sent == bytes.count
        }
        func stillSending() -> Bool {
            outcome.sendFailedAt == nil && elapsed() < limit && (keepSendingAfterAnswer || (answeredAt == nil && !closed))
        }
        if sendAll(head) {
            switch body {
            case .bytes(let bytes):
                if sendAll(bytes) { outcome.bodyBytesSent = bytes.count }
            case .stream(let total, let chunkSize), .chunked(let total, let chunkSize):
                let filler = [UInt8](repeating: UInt8(ascii: "x"), count: chunkSize)
                var chunk = filler
                if case .chunked = body {
                    chunk = Array(String(chunkSize, radix: 16).utf8) + Array("\r\n".utf8) + filler + Array("\r\n".utf8)
                }
                while outcome.bodyBytesSent < total, stillSending() {
                    drain(waiting: 0)
                    guard answeredAt == nil else { break }
                    guard let n = send(chunk[...]) else { sendFailed(); break }
                    // Partial sends of a chunk are completed before the next, to keep the framing.
                    var sent = n
                    while sent > 0, sent < chunk.count, stillSending() {
                        guard let more = send(chunk[sent...]) else { sendFailed(); break }
                        sent += more
                        if more == 0 { drain(waiting: 10) }
                    }
                    if sent == chunk.count { outcome.bodyBytesSent += chunkSize }
                }
            case .trickle(let bytes, let every):
                let pause = Int32(every.components.seconds * 1000 + every.components.attoseconds / 1_000_000_000_000_000)
                for byte in bytes {
                    guard stillSending() else { break }
                    guard let n = send([byte][...]), n == 1 else { sendFailed(); break }
                    outcome.bodyBytesSent += 1
                    let until = elapsed() + Double(pause) / 1000
                    while elapsed() < until {
                        if closed { usleep(UInt32(max(0, until - elapsed()) * 1e6)); break }
                        drain(waiting: max(1, Int32((until - elapsed()) * 1000)))
                    }
                }
            }
        }
        while !closed, elapsed() < limit { drain(waiting: 50) }
        outcome.closed = closed
        outcome.seconds = answeredAt ?? elapsed()
        parse(received, into: &outcome)
        return outcome
    }

    /// The first response in `bytes`: status, headers (lower-cased names), JSON fields.
    private func parse(_ bytes: [UInt8], into outcome: inout AttackOutcome) {
        guard let split = MultipartForm.find(Array("\r\n\r\n".utf8), in: bytes, from: 0) else { return }
        let head = String(decoding: bytes[0..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = head[0].split(separator: " ")
        guard statusLine.count >= 2 else { return }
        outcome.status = Int(statusLine[1])
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            outcome.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(split + 4)...])
        if let length = outcome.headers["content-length"].flatMap(Int.init), length <= body.count { body = Array(body.prefix(length)) }
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: String] { outcome.json = object }
    }
}

/// `work` on a thread of its own (blocking sockets stay off Swift's cooperative pool).
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

// MARK: - Bombs

/// A valid PNG head (signature, IHDR with correct CRC) announcing `width` x `height` RGB
/// pixels, a token IDAT and IEND: a few dozen bytes.
func pngClaiming(width: UInt32, height: UInt32) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    var out: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    func chunk(_ type: String, _ data: [UInt8]) {
        let typed = Array(type.utf8) + data
        out += be32(UInt32(data.count)) + typed + be32(crc32(typed))
    }
    chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
    chunk("IDAT", [0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01])   // zlib of a few zero bytes
    chunk("IEND", [])
    return out
}

/// `jpeg` with the size in its SOF marker replaced by `width` x `height`.
func jpegClaiming(width: Int, height: Int, from jpeg: [UInt8]) throws -> [UInt8] {
    var out = jpeg
    var i = 2
    while i + 9 < out.count {
        guard out[i] == 0xFF else { throw TestFailure("not a marker at \(i)") }
        let marker = out[i + 1]
        let length = Int(out[i + 2]) << 8 | Int(out[i + 3])
        if (0xC0...0xC2).contains(marker) {
            out[i + 5] = UInt8(height >> 8); out[i + 6] = UInt8(height & 255)
            out[i + 7] = UInt8(width >> 8); out[i + 8] = UInt8(width & 255)
            return out
        }
        i += 2 + length
    }
    throw TestFailure("no SOF marker in the JPEG")
}

/// CRC-32 (ISO 3309, as PNG uses it).
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
