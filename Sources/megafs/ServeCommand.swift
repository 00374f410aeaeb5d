import ArgumentParser
import Dispatch
import Foundation
import MegaFSServer
import MegaFSSwap

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve face swaps over HTTP (POST /v1/swap, a small page at /, /healthz, /readyz, /metrics).",
        discussion: """
            Models are loaded once, after the server starts listening (/readyz answers 503 until \
            then), from --models (default: $MEGAFS_MODELS, else ./models, as for `megafs swap`); \
            every swapper type the folder has is served unless --types names some.

            At most --concurrency swaps run at once and --queue more wait; beyond that, and when \
            a request's --deadline passes, the answer is 503 with Retry-After; an upload that takes \
            longer than --body-timeout gets 408. Bodies over --max-body and images over \
            --max-pixels (checked from their headers) get 413.

            Listens on 127.0.0.1 unless --host says otherwise. With --token-file or $MEGAFS_TOKEN, \
            /v1/swap and /metrics need `Authorization: Bearer TOKEN`. SIGTERM or SIGINT: readiness \
            turns off, the listener closes, requests in flight finish, then the process exits.

            Example:
              megafs serve --models models --port 8080
              curl -F source=@a.jpg -F target=@b.jpg 'http://127.0.0.1:8080/v1/swap?format=png' -o out.png
            """)

    @Option(help: "Folder with the converted models.")
    var models: String?

    @Option(help: "Address to listen on (0.0.0.0 for every interface).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8080

    @Option(help: "Swapper types to load, comma-separated (default: every one the folder has).")
    var types: String?

    @Option(help: "Swaps running at once.")
    var concurrency = 1

    @Option(help: "Requests waiting beyond --concurrency; more get 503.")
    var queue = 4

    @Option(help: "Seconds from a request's arrival to its answer (upload and queueing included).")
    var deadline = 120.0

    @Option(name: .customLong("body-timeout"), help: "Seconds a request may take to upload its body (it holds a queue place meanwhile); 408 past it.")
    var bodyTimeout = 30.0

    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may stay idle (also bounds a request head sent slowly).")
    var idleTimeout = 30.0

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes.")
    var maxBody = 32 << 20

    @Option(name: .customLong("max-pixels"), help: "Largest width x height of an uploaded image (checked before decoding).")
    var maxPixels = 16_000_000

    @Option(name: .customLong("token-file"), help: "File whose first line is the bearer token clients must send (else $MEGAFS_TOKEN, if set).")
    var tokenFile: String?

    @Option(help: "Threads per model (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("log-format"), help: "text or json (one JSON object per line).")
    var logFormat = "text"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard ServerLog.levels.contains(logLevel) else { throw ValidationError("--log-level must be one of \(ServerLog.levels.joined(separator: ", "))") }
        guard deadline > 0, deadline.isFinite else { throw ValidationError("--deadline must be a positive number of seconds") }
        guard bodyTimeout > 0, bodyTimeout.isFinite else { throw ValidationError("--body-timeout must be a positive number of seconds") }
        guard idleTimeout > 0, idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        if let types {
            for t in types.split(separator: ",") where !["ftm", "injection", "lcr"].contains(String(t)) {
                throw ValidationError("--types: unknown swapper type \(t) (ftm, injection, lcr)")
            }
        }
    }

    func run() throws {
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.concurrency = concurrency
        config.queueLength = queue
        config.deadline = .milliseconds(Int64(deadline * 1000))
        config.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        config.bodyTimeout = .milliseconds(Int64(bodyTimeout * 1000))
        config.maxBodyBytes = maxBody
        config.maxPixels = maxPixels
        if let tokenFile {
            config.token = try BearerToken.read(path: tokenFile)
        } else if let env = ProcessInfo.processInfo.environment["MEGAFS_TOKEN"] {
            guard let token = BearerToken(env) else { throw CLIError("MEGAFS_TOKEN is set but empty") }
            config.token = token
        }
        do { try config.validate() } catch { throw CLIError("\(error)") }

        _ = ServerLog.bootstrap(json: logFormat == "json", level: logLevel)
        let folder = models ?? ProcessInfo.processInfo.environment["MEGAFS_MODELS"] ?? "models"
        let typeList = types.map { $0.split(separator: ",").map(String.init) }
        let threads = self.threads, oneAtATime = concurrency == 1
        let server = MegaFSServer(configuration: config)

        // The root command is synchronous: run the server on Swift's executor and wait here.
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await server.run(modelDescription: folder) {
                    try SwapEngine.load(directory: folder, types: typeList, threads: threads, shareArena: oneAtATime)
                }
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw CLIError("\(error)") }
    }

    final class Outcome: @unchecked Sendable {
        var error: (any Error)?
    }
}
