import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MegaFSSwap

/// `POST /v1/swap`: multipart/form-data with `source`, `target` and optionally `target_mask`;
/// query `type` (ftm|injection|lcr), `refine` (true|false), `format` (png|jpeg). Answers the
/// image, with the stage timings in `Server-Timing`.
///
/// Order of checks, cheapest first: token, readiness, query, Content-Type, Content-Length,
/// a place in the queue (503 at once when full, before the body is read), the body (bounded
/// in size and by the body timeout and the deadline: 413, 408), the multipart form, a swap slot (until the deadline), the swap.
struct SwapHandler: Sendable {
    let configuration: ServerConfiguration
    let engine: SwapEngine
    let queue: SwapQueue
    let metrics: ServerMetrics

    static let fields: Set<String> = ["source", "target", "target_mask"]

    struct Query {
        var type: String?
        var refine = false
        var format = ImageFormat.png

        init(_ parameters: [(String, String)]) throws(APIError) {
            var seen = Set<String>()
            for (key, value) in parameters {
                guard seen.insert(key).inserted else { throw .badRequest("bad_query", "query parameter \(key) is given twice") }
                switch key {
                case "type":
                    guard ["ftm", "injection", "lcr"].contains(value) else {
                        throw .badRequest("bad_query", "type must be ftm, injection or lcr, not \(value.prefix(40))")
                    }
                    type = value
                case "refine":
                    switch value.lowercased() {
                    case "true", "1", "yes", "on": refine = true
                    case "false", "0", "no", "off", "": refine = false
                    default: throw .badRequest("bad_query", "refine must be true or false")
                    }
                case "format":
                    switch value.lowercased() {
                    case "png": format = .png
                    case "jpeg", "jpg": format = .jpeg
                    default: throw .badRequest("bad_query", "format must be png or jpeg")
                    }
                default:
                    throw .badRequest("bad_query", "unknown query parameter \(key.prefix(40)) (known: type, refine, format)")
                }
            }
        }
    }

    func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let arrival = ContinuousClock.now
        let deadline = arrival + configuration.deadline
        if let token = configuration.token, !token.accepts(request.headers) {
            throw APIError.unauthorized
        }
        try checkReady()
        let query = try Query(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let available = engine.swapperTypes
        let type = query.type ?? (available.contains("ftm") ? "ftm" : available.first ?? "ftm")
        guard available.contains(type) else {
            throw APIError.badRequest("unknown_type", "swapper type \(type) is not loaded (available: \(available.joined(separator: ", ")))")
        }
        let boundary = try MultipartForm.boundary(contentType: request.headers[.contentType] ?? "")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw bodyTooLarge()
        }

        let ticket: SwapQueue.Ticket
        do {
            ticket = try await queue.admit()
        } catch {
            metrics.rejected("queue_full")
            throw APIError(.serviceUnavailable, "queue_full",
                           "the server is busy (\(queue.concurrency) running, \(queue.queueLength) waiting); try again later",
                           retryAfter: await retryAfter())
        }
        var handedOver = false
        do {
            let form = try await readForm(request, boundary: boundary, arrival: arrival, deadline: deadline)
            let job = SwapJob(source: form.source, target: form.target, targetMask: form.mask, swapperType: type,
                              refine: query.refine, format: query.format, jpegQuality: configuration.jpegQuality)
            do {
                try await queue.waitForSlot(ticket, deadline: deadline)
            } catch {
                metrics.rejected("deadline")
                throw APIError(.serviceUnavailable, "deadline_exceeded",
                               "no swap slot became free before the deadline; try again later", retryAfter: await retryAfter())
            }
            let queue = self.queue, metrics = self.metrics
            let pending = engine.submit(job, decode: configuration.decodeOptions) { outcome in
                for t in outcome?.timings ?? [] { metrics.stage(t.stage, milliseconds: t.milliseconds) }
                Task {
                    await queue.release()
                    await queue.leave(ticket)
                }
            }
            handedOver = true
            let outcome: SwapOutcome
            do {
                outcome = try await pending.value(deadline: deadline)
            } catch let e as APIError where e.code == APIError.deadlineExceeded.code {
                metrics.rejected("deadline")
                var e = e
                e.retryAfter = await retryAfter()
                throw e
            }
            context.logger.info("swap done", metadata: [
                "type": .string(type), "refine": .stringConvertible(query.refine),
                "size": .string("\(outcome.width)x\(outcome.height)"),
                "timings_ms": .string(outcome.timings.map { "\($0.stage)=\(String(format: "%.1f", $0.milliseconds))" }.joined(separator: ",")),
            ])
            var headers = HTTPFields()
            headers[.contentType] = outcome.format == .png ? "image/png" : "image/jpeg"
            headers[.cacheControl] = "no-store"
            headers[HTTPField.Name("Server-Timing")!] = outcome.timings
                .map { "\($0.stage);dur=\(String(format: "%.1f", $0.milliseconds))" }.joined(separator: ", ")
            headers[HTTPField.Name("X-Image-Size")!] = "\(outcome.width)x\(outcome.height)"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: outcome.image)))
        } catch {
            if !handedOver { await queue.leave(ticket) }
            throw error
        }
    }

    func checkReady() throws {
        switch engine.state {
        case .loading:
            metrics.rejected("loading")
            throw APIError(.serviceUnavailable, "loading", "the models are still loading; try again shortly", retryAfter: 5)
        case .failed(let message):
            throw APIError(.serviceUnavailable, "models_failed", "the models could not be loaded: \(message)")
        case .ready:
            if engine.draining {
                metrics.rejected("shutting_down")
                throw APIError(.serviceUnavailable, "shutting_down", "the server is shutting down", retryAfter: 5)
            }
        }
    }

    struct Form {
        var source: [UInt8]
        var target: [UInt8]
        var mask: [UInt8]?
    }

    /// The body, at most `maxBodyBytes`, read within the body timeout and before `deadline`,
    /// parsed as the swap's form.
    func readForm(_ request: Request, boundary: String, arrival: ContinuousClock.Instant,
                  deadline: ContinuousClock.Instant) async throws -> Form {
        let limit = configuration.maxBodyBytes
        let body = request.body
        let buffer: ByteBuffer
        let bodyDeadline = min(deadline, arrival + configuration.bodyTimeout)
        let allowed = configuration.bodyTimeout < configuration.deadline ? "body timeout (\(configuration.bodyTimeout))"
            : "deadline (\(configuration.deadline))"
        do {
            buffer = try await withDeadline(bodyDeadline) { try await body.collect(upTo: limit) }
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw bodyTooLarge()
        } catch let e as APIError where e.code == APIError.deadlineExceeded.code {
            // The body is read before queueing: only a slow upload gets here, the client's doing.
            metrics.rejected("body_timeout")
            throw APIError(.requestTimeout, "body_timeout", "the request body did not arrive within the \(allowed)")
        }
        let form = try MultipartForm(body: Array(buffer.readableBytesView), boundary: boundary)
        for part in form.parts where !Self.fields.contains(part.name) {
            throw APIError.badRequest("unknown_field", "unknown form field \(part.name.prefix(40)) (expected source, target and optionally target_mask)")
        }
        func file(_ name: String) throws -> [UInt8]? {
            guard let part = form[name] else { return nil }
            guard !part.body.isEmpty else { throw APIError.badRequest("empty_field", "the form field \(name) is empty") }
            return part.body
        }
        guard let source = try file("source") else { throw APIError.badRequest("missing_field", "the form field source (an image) is missing") }
        guard let target = try file("target") else { throw APIError.badRequest("missing_field", "the form field target (an image) is missing") }
        return Form(source: source, target: target, mask: try file("target_mask"))
    }

    func bodyTooLarge() -> APIError {
        metrics.rejected("body_too_large")
        return APIError(.contentTooLarge, "body_too_large", "the request body is larger than \(configuration.maxBodyBytes) bytes")
    }

    /// Seconds until a slot is likely free: the smoothed swap time for everyone ahead.
    func retryAfter() async -> Int {
        let ahead = await queue.waiting + queue.running + 1
        let seconds = engine.typicalSwapSeconds * Double(ahead) / Double(queue.concurrency)
        return min(300, max(1, Int(seconds.rounded(.up))))
    }
}

/// `operation`'s result, or `APIError.deadlineExceeded` once `deadline` passes (the operation
/// is cancelled).
func withDeadline<T: Sendable>(_ deadline: ContinuousClock.Instant,
                               _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(until: deadline, clock: .continuous)
            throw APIError.deadlineExceeded
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
