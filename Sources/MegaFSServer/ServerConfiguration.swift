import MegaFSSwap

/// Everything `megafs serve` can be told. The defaults suit a small server (2 cores, a few GB):
/// one swap at a time, four more waiting, loopback only.
public struct ServerConfiguration: Sendable {
    /// Address to listen on; loopback unless told otherwise.
    public var host: String = "127.0.0.1"
    /// Port; 0 picks a free one (tests).
    public var port: Int = 8080
    /// Swaps running at once.
    public var concurrency: Int = 1
    /// Requests waiting for a slot beyond `concurrency`; more get 503 with Retry-After.
    public var queueLength: Int = 4
    /// Time from a request's arrival to its answer, body upload and queueing included; past it
    /// the request gets 503 (the swap, once started, finishes in the background).
    public var deadline: Duration = .seconds(120)
    /// Time from a request's arrival until its whole body has arrived (408 past it). A request
    /// holds a place in the queue while it uploads, so this bounds how long slow clients can
    /// keep those places from others; the swap deadline above still applies too.
    public var bodyTimeout: Duration = .seconds(30)
    /// Largest request body (all parts together).
    public var maxBodyBytes: Int = 32 << 20
    /// Largest width x height of each uploaded image, checked from its header before decoding.
    public var maxPixels: Int = 16_000_000
    /// When set, /v1/swap and /metrics need `Authorization: Bearer TOKEN`.
    public var token: BearerToken?
    /// Connections idle this long are closed (also bounds slow uploads between bytes).
    public var idleTimeout: Duration = .seconds(30)
    /// JPEG quality of `format=jpeg` results.
    public var jpegQuality: Int = 92

    public init() {}

    var decodeOptions: ImageDecodeOptions {
        ImageDecodeOptions(maxPixels: maxPixels, maxFileBytes: maxBodyBytes)
    }

    /// Checks ranges; the message names the option.
    public func validate() throws {
        guard (1...64).contains(concurrency) else { throw ServerSetupError("--concurrency must be 1...64") }
        guard (0...10_000).contains(queueLength) else { throw ServerSetupError("--queue must be 0...10000") }
        guard deadline > .zero else { throw ServerSetupError("--deadline must be positive") }
        guard bodyTimeout > .zero else { throw ServerSetupError("--body-timeout must be positive") }
        guard maxBodyBytes >= 1024 else { throw ServerSetupError("--max-body must be at least 1 kB") }
        guard maxPixels >= 1 else { throw ServerSetupError("--max-pixels must be positive") }
        guard (0...65535).contains(port) else { throw ServerSetupError("--port must be 0...65535") }
    }
}
