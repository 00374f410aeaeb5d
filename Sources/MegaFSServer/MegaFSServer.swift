import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MegaFSSwap
import NIOCore
import ServiceLifecycle

/// The HTTP service: routes, the swap queue, metrics, and its lifecycle.
///
/// ```
/// let server = MegaFSServer(configuration: configuration)
/// try await server.run(logger: logger) { try SwapEngine.load(directory: "models", types: nil, threads: nil) }
/// ```
/// Routes: `GET /` (the page), `POST /v1/swap`, `GET /healthz`, `GET /readyz`, `GET /metrics`;
/// described in docs/openapi.yaml.
public struct MegaFSServer: Sendable {
    public let configuration: ServerConfiguration
    public let engine: SwapEngine
    public let queue: SwapQueue
    public let metrics: ServerMetrics

    /// `engine` starts loading (not ready) unless given ready.
    public init(configuration: ServerConfiguration, engine: SwapEngine = SwapEngine()) {
        self.configuration = configuration
        self.engine = engine
        let metrics = ServerMetrics()
        self.metrics = metrics
        self.queue = SwapQueue(concurrency: configuration.concurrency, queueLength: configuration.queueLength) {
            metrics.queue(waiting: $0, running: $1)
        }
        if case .ready = engine.state { metrics.modelsReady(true) }
    }

    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestMiddleware(metrics: metrics))   // before the routes: it wraps each
        let engine = engine, metrics = metrics, token = configuration.token
        router.get("/") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: Page.html)))
        }
        router.get("/healthz") { _, _ in
            Self.json(["status": "ok"])
        }
        router.get("/readyz") { _, _ in
            switch engine.state {
            case .loading: throw APIError(.serviceUnavailable, "not_ready", "the models are still loading", retryAfter: 5)
            case .failed(let m): throw APIError(.serviceUnavailable, "not_ready", "the models could not be loaded: \(m)")
            case .ready:
                if engine.draining { throw APIError(.serviceUnavailable, "not_ready", "the server is shutting down") }
                return Self.json(["status": "ready", "types": engine.swapperTypes.joined(separator: ",")])
            }
        }
        router.get("/metrics") { request, _ in
            if let token, !token.accepts(request.headers) { throw APIError.unauthorized }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        let swap = SwapHandler(configuration: configuration, engine: engine, queue: queue, metrics: metrics)
        router.post("/v1/swap") { request, context in try await swap.handle(request, context: context) }
        router.get("/v1/swap") { _, _ -> Response in
            throw APIError(.methodNotAllowed, "method_not_allowed", "use POST with multipart/form-data (see docs/openapi.yaml)")
        }
        return router
    }

    /// The Hummingbird application (without the model loader: see `run`).
    public func makeApplication(logger: Logger,
                                onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
        -> Application<RouterResponder<BasicRequestContext>> {
        let idle = configuration.idleTimeout.components
        return Application(
            router: buildRouter(),
            // A fresh EarlyResponseCloser per connection (the argument is an autoclosure).
            server: .http1(configuration: .init(additionalChannelHandlers: [EarlyResponseCloser()],
                                                idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "megafs"),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then drains: /readyz turns 503, the listener closes and
    /// requests in flight finish. Models are loaded by `loadModels` on a worker thread once the
    /// server listens (/healthz answers meanwhile, /readyz and /v1/swap say 503 "loading");
    /// if loading fails, `run` throws.
    public func run(logger: Logger = Logger(label: "megafs.serve"), modelDescription: String = "",
                    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
                    loadModels: @escaping @Sendable () throws -> [String: any SwapNetworks]) async throws {
        try configuration.validate()
        let c = configuration
        logger.info("starting", metadata: [
            "address": .string("\(c.host):\(c.port)"), "models": .string(modelDescription),
            "concurrency": .stringConvertible(c.concurrency), "queue": .stringConvertible(c.queueLength),
            "token": .string(c.token == nil ? "none" : "required"),
        ])
        if !["127.0.0.1", "localhost", "::1"].contains(c.host) && c.token == nil {
            logger.warning("listening beyond loopback without a token: anyone who can reach \(c.host):\(c.port) can use the server")
        }
        let app = makeApplication(logger: logger, onServerRunning: onServerRunning)
        let loader = ModelLoaderService(engine: engine, metrics: metrics, logger: logger, load: loadModels)
        // Shut down in reverse order: the loader first (readiness off), then the HTTP server.
        let group = ServiceGroup(configuration: .init(services: [app, loader],
                                                      gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
        logger.info("stopped")
    }

    static func json(_ object: [String: String]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Loads the models once, then waits for graceful shutdown and marks the engine draining.
struct ModelLoaderService: Service {
    let engine: SwapEngine
    let metrics: ServerMetrics
    let logger: Logger
    let load: @Sendable () throws -> [String: any SwapNetworks]

    func run() async throws {
        if case .ready = engine.state {} else {
            let start = ContinuousClock.now
            do {
                let load = self.load
                let networks = try await withCheckedThrowingContinuation { continuation in
                    DispatchQueue.global(qos: .userInitiated).async { continuation.resume(with: Result { try load() }) }
                }
                engine.setReady(networks)
                metrics.modelsReady(true)
                logger.info("models loaded", metadata: [
                    "types": .string(engine.swapperTypes.joined(separator: ",")),
                    "seconds": .string("\(ContinuousClock.now - start)"),
                ])
            } catch {
                engine.setFailed("\(error)")
                logger.critical("cannot load the models", metadata: ["error": .string("\(error)")])
                throw error
            }
        }
        try? await gracefulShutdown()
        engine.setDraining()
        metrics.modelsReady(false)
        logger.info("shutting down: finishing requests in flight")
    }
}
