import Foundation
import Logging

/// One JSON object per log line on standard error, for log collectors:
/// `{"ts":"2026-11-30T10:00:00.123Z","level":"info","msg":"request","hb.request.id":"…","status":"200",…}`.
/// Metadata values are written as strings (nested values flattened with their description).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var fields: [String: String] = [:]
        for (k, v) in metadataProvider?.get() ?? [:] { fields[k] = "\(v)" }
        for (k, v) in self.metadata { fields[k] = "\(v)" }
        for (k, v) in explicit ?? [:] { fields[k] = "\(v)" }
        if let error = event.error { fields["error"] = "\(error)" }
        fields["ts"] = Date().ISO8601Format(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        fields["level"] = level.rawValue
        fields["msg"] = message.description
        fields["logger"] = label
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        Self.lock.withLock {
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}

/// Log set-up for `megafs serve`: text (swift-log's standard-error lines) or JSON lines.
public enum ServerLog {
    public static let levels = Logger.Level.allCases.map(\.rawValue)

    /// Bootstraps swift-log for the process (call once); false when `level` is not a level name.
    public static func bootstrap(json: Bool, level: String) -> Bool {
        guard let level = Logger.Level(rawValue: level) else { return false }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return true
    }
}
