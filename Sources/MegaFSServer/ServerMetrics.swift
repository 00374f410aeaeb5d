import Foundation
import Metrics
import Prometheus

/// The server's metrics, recorded through swift-metrics into a Prometheus registry of this
/// server's own (not the process-global one, so that several servers, e.g. in tests, keep
/// separate counts) and exposed at `GET /metrics`.
///
/// - `megafs_http_requests_total{route,status}`: requests answered, by route and status code
/// - `megafs_http_request_duration_seconds{route}`: time to answer, histogram
/// - `megafs_swap_stage_duration_seconds{stage}`: each swap stage (decode, the pipeline's
///   preprocess/encode/swap/generate/mask/blend/refine, encode_output), histogram
/// - `megafs_swap_queue_depth`: requests waiting for a slot
/// - `megafs_swaps_in_flight`: swaps holding a slot
/// - `megafs_rejected_total{reason}`: requests turned away (queue_full, deadline, loading, ...)
/// - `megafs_resident_memory_bytes`, `megafs_peak_resident_memory_bytes`: the process's RSS
///   and its high-water mark, read from /proc when scraped
/// - `megafs_models_ready`: 1 once the models are loaded
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let queueDepth: Metrics.Gauge
    private let inFlight: Metrics.Gauge
    private let resident: Metrics.Gauge
    private let peakResident: Metrics.Gauge
    private let ready: Metrics.Gauge

    static let requestDurationLabel = "megafs_http_request_duration_seconds"
    static let stageDurationLabel = "megafs_swap_stage_duration_seconds"

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                   .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
                                   .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        factory.durationHistogramBuckets = [Self.requestDurationLabel: buckets, Self.stageDurationLabel: buckets]
        self.factory = factory
        queueDepth = Metrics.Gauge(label: "megafs_swap_queue_depth", factory: factory)
        inFlight = Metrics.Gauge(label: "megafs_swaps_in_flight", factory: factory)
        resident = Metrics.Gauge(label: "megafs_resident_memory_bytes", factory: factory)
        peakResident = Metrics.Gauge(label: "megafs_peak_resident_memory_bytes", factory: factory)
        ready = Metrics.Gauge(label: "megafs_models_ready", factory: factory)
        queueDepth.record(0)
        inFlight.record(0)
        ready.record(0)
    }

    /// A request was answered.
    func request(route: String, status: Int, seconds: Double) {
        Counter(label: "megafs_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                factory: factory).increment()
        Metrics.Timer(label: Self.requestDurationLabel, dimensions: [("route", route)], factory: factory)
            .recordSeconds(seconds)
    }

    func stage(_ name: String, milliseconds: Double) {
        Metrics.Timer(label: Self.stageDurationLabel, dimensions: [("stage", name)], factory: factory)
            .recordNanoseconds(Int64(milliseconds * 1e6))
    }

    func rejected(_ reason: String) {
        Counter(label: "megafs_rejected_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func queue(waiting: Int, running: Int) {
        queueDepth.record(waiting)
        inFlight.record(running)
    }

    func modelsReady(_ isReady: Bool) { ready.record(isReady ? 1 : 0) }

    /// The Prometheus text exposition, with the memory gauges read now.
    public func exposition() -> [UInt8] {
        let memory = ResidentMemory.read()
        if let current = memory.current { resident.record(current) }
        if let peak = memory.peak { peakResident.record(peak) }
        return registry.emitToBuffer()
    }
}

/// The process's resident set size from /proc (Linux); nil elsewhere.
public enum ResidentMemory {
    /// `VmRSS` and `VmHWM` of /proc/self/status, in bytes.
    public static func read() -> (current: Int?, peak: Int?) {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (nil, nil) }
        func value(_ key: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kb = Int(fields[1]) else { return nil }
            return kb * 1024
        }
        return (value("VmRSS"), value("VmHWM"))
    }
}
