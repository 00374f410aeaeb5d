import Foundation
import HTTPTypes

/// The optional access token: when set, `POST /v1/swap` and `GET /metrics` need
/// `Authorization: Bearer TOKEN`; the page, /healthz and /readyz stay open (probes carry no token).
public struct BearerToken: Sendable {
    let token: [UInt8]

    /// Nil for an empty token (spaces and line ends around it are dropped).
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        token = Array(trimmed.utf8)
    }

    /// Reads the token from `path` (its first line), for `--token-file`.
    public static func read(path: String) throws -> BearerToken {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ServerSetupError("cannot read the token file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).first, let token = BearerToken(String(line)) else {
            throw ServerSetupError("the token file \(path) is empty")
        }
        return token
    }

    /// Whether the request's Authorization header carries this token (compared in constant time).
    func accepts(_ headers: HTTPFields) -> Bool {
        guard let value = headers[.authorization] else { return false }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let given = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        var difference = UInt8(given.count == token.count ? 0 : 1)
        for i in 0..<token.count {
            difference |= token[i] ^ (i < given.count ? given[i] : 0)
        }
        return difference == 0
    }
}

/// A configuration problem found before the server starts.
public struct ServerSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
