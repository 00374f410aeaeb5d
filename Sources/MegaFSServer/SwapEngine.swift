import Dispatch
import Foundation
import MegaFSRuntime
import MegaFSSwap

/// What one swap request asks for, its images still encoded.
public struct SwapJob: Sendable {
    public var source: [UInt8]
    public var target: [UInt8]
    public var targetMask: [UInt8]?
    public var swapperType: String
    public var refine: Bool
    public var format: ImageFormat
    public var jpegQuality: Int

    public init(source: [UInt8], target: [UInt8], targetMask: [UInt8]? = nil, swapperType: String = "ftm",
                refine: Bool = false, format: ImageFormat = .png, jpegQuality: Int = 92) {
        self.source = source
        self.target = target
        self.targetMask = targetMask
        self.swapperType = swapperType
        self.refine = refine
        self.format = format
        self.jpegQuality = jpegQuality
    }
}

/// A finished swap: the encoded image and the time each stage took.
public struct SwapOutcome: Sendable {
    public var image: [UInt8]
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// `decode`, the pipeline's stages, then `output` (encoding the result).
    public var timings: [StageTime]
}

/// How long one stage of a request's swap took.
public struct StageTime: Sendable, Equatable {
    public var stage: String
    public var milliseconds: Double
}

/// The models, loaded once and shared by every request, and the swap itself (run on worker
/// threads, off the server's event loops and Swift's cooperative pool).
///
/// One encoder and one generator session serve every swapper type; a runtime session runs one
/// call at a time, so with `concurrency > 1` concurrent swaps overlap in decoding, pre- and
/// post-processing and in different networks, never in the same one.
public final class SwapEngine: @unchecked Sendable {
    public enum State: Sendable {
        case loading
        case ready
        case failed(String)
    }

    private let lock = NSLock()
    private var networks: [String: any SwapNetworks] = [:]
    private var _state: State = .loading
    private var _draining = false
    private var averageSwapSeconds = 1.0
    private let workers = DispatchQueue(label: "megafs.swap", qos: .userInitiated, attributes: .concurrent)

    public init() {}

    /// Ready with these networks (by swapper type).
    public convenience init(networks: [String: any SwapNetworks]) {
        self.init()
        setReady(networks)
    }

    public var state: State { lock.withLock { _state } }
    /// Set once graceful shutdown has begun: /readyz answers 503 so that load balancers stop
    /// sending requests, while requests in flight finish.
    public var draining: Bool { lock.withLock { _draining } }
    public var swapperTypes: [String] { lock.withLock { networks.keys.sorted() } }

    public func setReady(_ networks: [String: any SwapNetworks]) {
        lock.withLock { self.networks = networks; _state = .ready }
    }

    public func setFailed(_ message: String) { lock.withLock { _state = .failed(message) } }
    public func setDraining() { lock.withLock { _draining = true } }

    /// A smoothed swap duration, for Retry-After.
    var typicalSwapSeconds: Double { lock.withLock { averageSwapSeconds } }

    /// Loads the models of `directory` for `types` (nil: every swapper type the folder has),
    /// sharing one encoder and one generator session between the types. `shareArena`: all the
    /// sessions use one activation arena (`SharedArena`), which suits one swap at a time
    /// (`--concurrency 1`); with more, each keeps its own so that swaps overlap in different
    /// networks.
    public static func load(directory: String, types: [String]?, threads: Int?,
                            shareArena: Bool = true) throws -> [String: any SwapNetworks] {
        let wanted = types ?? ["ftm", "injection", "lcr"]
        var bundles: [ModelBundle] = []
        for type in wanted {
            do {
                bundles.append(try ModelBundle(directory: directory, swapperType: type))
            } catch ModelBundle.Error.missing(let message) where types == nil && message.contains("swapper") {
                continue    // a type the folder does not have
            }
        }
        guard let first = bundles.first else {
            throw ModelBundle.Error.missing("no swapper model in \(directory) (looked for \(wanted.joined(separator: ", ")))")
        }
        var options = SessionOptions(threads: threads)
        if shareArena { options.sharedArena = SharedArena() }
        let encoder = try InferenceSession(modelPath: first.encoderPath, options: options)
        let generator = try InferenceSession(modelPath: first.generatorPath, options: options)
        var result: [String: any SwapNetworks] = [:]
        for bundle in bundles {
            let swapper = try InferenceSession(modelPath: bundle.swapperPath, options: options)
            result[bundle.swapperType] = SessionSwapNetworks(encoder: encoder, swapper: swapper, generator: generator)
        }
        return result
    }

    /// Runs `job` on a worker thread; `finished` is called there when the work ends (with the
    /// outcome, nil on failure), whether or not anyone still waits for it.
    func submit(_ job: SwapJob, decode: ImageDecodeOptions,
                finished: @escaping @Sendable (SwapOutcome?) -> Void) -> PendingSwap {
        let pending = PendingSwap()
        workers.async { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            let result = Result { try run(job, decode: decode) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if case .success = result {
                lock.withLock { averageSwapSeconds = 0.8 * averageSwapSeconds + 0.2 * seconds }
            }
            pending.complete(result)
            finished(try? result.get())
        }
        return pending
    }

    /// The swap itself, synchronous: decode (pixel limits checked from the headers first),
    /// the pipeline, encode the result.
    func run(_ job: SwapJob, decode: ImageDecodeOptions) throws -> SwapOutcome {
        guard let networks = lock.withLock({ self.networks[job.swapperType] }) else {
            throw APIError.badRequest("unknown_type", "swapper type \(job.swapperType) is not loaded (available: \(swapperTypes.joined(separator: ", ")))")
        }
        var timings: [StageTime] = []
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            defer { timings.append(StageTime(stage: name, milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)) }
            return try body()
        }
        let (source, target, mask) = try timed("decode") {
            let source = try ImageIO.decode(job.source, name: "source", options: decode)
            let target = try ImageIO.decode(job.target, name: "target", options: decode)
            let mask: MaskSource = try job.targetMask.map { .labels(try LabelMap.decode($0, name: "target_mask", options: decode)) } ?? .ellipse()
            return (source, target, mask)
        }
        let result = try SwapPipeline(networks: networks).run(
            source: source, target: target, options: SwapOptions(mask: mask, refine: job.refine))
        timings += result.timings.map { StageTime(stage: $0.stage, milliseconds: $0.milliseconds) }
        let image = result.refined ?? result.image
        let bytes = try timed("output") {
            switch job.format {
            case .png: return try ImageIO.encodePNG(image)
            case .jpeg: return try ImageIO.encodeJPEG(image, quality: job.jpegQuality)
            }
        }
        return SwapOutcome(image: bytes, format: job.format, width: image.width, height: image.height, timings: timings)
    }
}

/// The result of a swap running on a worker thread, awaited until a deadline.
final class PendingSwap: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<SwapOutcome, any Error>?
    private var waiter: CheckedContinuation<SwapOutcome, any Error>?

    func complete(_ r: Result<SwapOutcome, any Error>) {
        lock.lock()
        guard result == nil else { lock.unlock(); return }
        result = r
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume(with: r)
    }

    /// The outcome, or `APIError.deadline` when `deadline` passes first (the work goes on and
    /// its result is dropped).
    func value(deadline: ContinuousClock.Instant) async throws -> SwapOutcome {
        let timer = Task { [weak self] in
            try await Task.sleep(until: deadline, clock: .continuous)
            self?.complete(.failure(APIError.deadlineExceeded))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(with: result)
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
