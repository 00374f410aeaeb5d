#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A strict, bounded parser for `multipart/form-data` bodies (RFC 7578, RFC 2046 section 5.1).
///
/// The body is already in memory (its size bounded by the server's body limit); the parser
/// copies each part's content once and never allocates more than the body's size in total.
/// Strict where browsers and curl are regular: CRLF line ends, a boundary of 1...70 characters
/// from RFC 2046's set, every part with a `Content-Disposition: form-data; name="..."` header,
/// no two parts with the same name, at most `Limits.maxParts` parts, at most
/// `Limits.maxHeaderBytes` of headers per part, and the closing delimiter present. Anything
/// else is a `MultipartError`, never a crash: this is fuzzed (issue #10).
public struct MultipartForm: Sendable {
    public struct Part: Sendable {
        /// The form field's name.
        public var name: String
        /// The file name the client gave, if any.
        public var filename: String?
        /// The part's `Content-Type`, if given (lower-cased, without parameters).
        public var contentType: String?
        public var body: [UInt8]
    }

    public struct Limits: Sendable {
        public var maxParts: Int
        public var maxHeaderBytes: Int
        public init(maxParts: Int = 8, maxHeaderBytes: Int = 4096) {
            self.maxParts = maxParts
            self.maxHeaderBytes = maxHeaderBytes
        }
    }

    public var parts: [Part]

    /// The part named `name`.
    public subscript(name: String) -> Part? { parts.first { $0.name == name } }

    /// The boundary of a `Content-Type: multipart/form-data; boundary=...` header value.
    public static func boundary(contentType: String) throws(MultipartError) -> String {
        let pieces = contentType.split(separator: ";", omittingEmptySubsequences: false)
        guard let type = pieces.first,
              type.trimmingSpaces().lowercased() == "multipart/form-data" else {
            throw .notMultipart
        }
        var boundary: String?
        for parameter in pieces.dropFirst() {
            guard let eq = parameter.firstIndex(of: "=") else { continue }
            let key = parameter[..<eq].trimmingSpaces().lowercased()
            guard key == "boundary" else { continue }
            guard boundary == nil else { throw .invalidBoundary("the boundary parameter is given twice") }
            var value = parameter[parameter.index(after: eq)...].trimmingSpaces()
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw .invalidBoundary("unterminated quote") }
                value = String(value.dropFirst().dropLast())
            }
            boundary = value
        }
        guard let boundary else { throw .invalidBoundary("no boundary parameter") }
        try validate(boundary: boundary)
        return boundary
    }

    /// RFC 2046: 1...70 characters of `bchars`, not ending in a space.
    static func validate(boundary: String) throws(MultipartError) {
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
        let bytes = Array(boundary.utf8)
        guard (1...70).contains(bytes.count) else {
            throw .invalidBoundary("length \(bytes.count), must be 1...70")
        }
        guard bytes.allSatisfy(allowed.contains), bytes.last != UInt8(ascii: " ") else {
            throw .invalidBoundary("characters outside RFC 2046's set")
        }
    }

    /// Parses `body` with the boundary from the request's Content-Type.
    public init(body: [UInt8], boundary: String, limits: Limits = Limits()) throws(MultipartError) {
        try Self.validate(boundary: boundary)
        let delimiter = Array("--\(boundary)".utf8)
        parts = []
        // The first delimiter: at the start, or after a preamble that ends with CRLF.
        var position: Int
        if body.starts(with: delimiter) {
            position = delimiter.count
        } else {
            guard let at = Self.find(Array("\r\n".utf8) + delimiter, in: body, from: 0) else {
                throw .missingDelimiter
            }
            position = at + 2 + delimiter.count
        }
        let separator = Array("\r\n".utf8) + delimiter
        while true {
            // After a delimiter: "--" closes the body; otherwise optional spaces and CRLF.
            if Self.matches(body, at: position, Array("--".utf8)) { return }
            while position < body.count, body[position] == UInt8(ascii: " ") || body[position] == UInt8(ascii: "\t") {
                position += 1
            }
            guard Self.matches(body, at: position, Array("\r\n".utf8)) else {
                throw position >= body.count ? .missingClosingDelimiter : .malformed("expected CRLF after the boundary")
            }
            position += 2
            guard parts.count < limits.maxParts else { throw .tooManyParts(limit: limits.maxParts) }
            // Headers end at an empty line.
            let headerEnd = Self.find(Array("\r\n\r\n".utf8), in: body, from: position,
                                      before: min(body.count, position + limits.maxHeaderBytes + 4))
            let headersEnd: Int, contentStart: Int
            if Self.matches(body, at: position, Array("\r\n".utf8)) {
                headersEnd = position; contentStart = position + 2       // no headers at all
            } else if let headerEnd {
                headersEnd = headerEnd; contentStart = headerEnd + 4
            } else if body.count - position > limits.maxHeaderBytes {
                throw .headersTooLarge(limit: limits.maxHeaderBytes)
            } else {
                throw .missingClosingDelimiter
            }
            var part = try Self.parseHeaders(Array(body[position..<headersEnd]))
            guard let contentEnd = Self.find(separator, in: body, from: contentStart) else {
                throw .missingClosingDelimiter
            }
            part.body = Array(body[contentStart..<contentEnd])
            guard !parts.contains(where: { $0.name == part.name }) else { throw .duplicatePart(part.name) }
            parts.append(part)
            position = contentEnd + separator.count
        }
    }

    /// One part's header block (lines separated by CRLF, no final CRLF).
    static func parseHeaders(_ block: [UInt8]) throws(MultipartError) -> Part {
        guard let text = String(validating: block, as: UTF8.self) else { throw .malformed("part headers are not UTF-8") }
        var name: String?
        var filename: String?
        var contentType: String?
        var sawDisposition = false
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false) where !line.isEmpty {
            guard !line.contains("\r"), !line.contains("\n") else { throw .malformed("bare CR or LF in part headers") }
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("part header line without a colon") }
            let key = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces()
            guard !key.isEmpty, key.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .malformed("bad header name") }
            switch key {
            case "content-disposition":
                guard !sawDisposition else { throw .malformed("two Content-Disposition headers in one part") }
                sawDisposition = true
                let params = try parseDisposition(value)
                name = params.name
                filename = params.filename
            case "content-type":
                contentType = value.split(separator: ";").first.map { String($0).trimmingSpaces().lowercased() }
            default:
                break   // Content-Transfer-Encoding and others are ignored (RFC 7578 4.7)
            }
        }
        guard sawDisposition, let name else { throw .malformed("a part without Content-Disposition: form-data; name=\"...\"") }
        return Part(name: name, filename: filename, contentType: contentType, body: [])
    }

    /// `form-data; name="x"; filename="y"` (quoted strings with backslash escapes, or tokens).
    static func parseDisposition(_ value: String) throws(MultipartError) -> (name: String?, filename: String?) {
        var chars = Array(value.unicodeScalars)[...]
        func skipSpaces() { while let c = chars.first, c == " " || c == "\t" { chars.removeFirst() } }
        func token() -> String {
            var s = ""
            while let c = chars.first, c != ";", c != "=", c != " ", c != "\t", c != "\"" { s.unicodeScalars.append(c); chars.removeFirst() }
            return s
        }
        skipSpaces()
        guard token().lowercased() == "form-data" else { throw .malformed("Content-Disposition is not form-data") }
        var params: [String: String] = [:]
        while true {
            skipSpaces()
            guard let c = chars.first else { break }
            guard c == ";" else { throw .malformed("unexpected character in Content-Disposition") }
            chars.removeFirst()
            skipSpaces()
            if chars.isEmpty { break }
            let key = token().lowercased()
            skipSpaces()
            guard !key.isEmpty, chars.first == "=" else { throw .malformed("Content-Disposition parameter without a value") }
            chars.removeFirst()
            skipSpaces()
            var v = ""
            if chars.first == "\"" {
                chars.removeFirst()
                var closed = false
                while let c = chars.popFirst() {
                    if c == "\"" { closed = true; break }
                    if c == "\\", let next = chars.popFirst() { v.unicodeScalars.append(next); continue }
                    v.unicodeScalars.append(c)
                }
                guard closed else { throw .malformed("unterminated quoted string in Content-Disposition") }
            } else {
                v = token()
            }
            guard params[key] == nil else { throw .malformed("Content-Disposition parameter \(key) given twice") }
            params[key] = v
        }
        guard let name = params["name"], !name.isEmpty else { throw .malformed("Content-Disposition without a name") }
        return (name, params["filename"])
    }

    static func matches(_ body: [UInt8], at i: Int, _ pattern: [UInt8]) -> Bool {
        guard i >= 0, i + pattern.count <= body.count else { return false }
        for k in 0..<pattern.count where body[i + k] != pattern[k] { return false }
        return true
    }

    /// First index >= `from` where `needle` starts and ends at or before `before`
    /// (memchr for the first byte, then memcmp). Public for the server's tests.
    public static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int, before: Int? = nil) -> Int? {
        let end = min(before ?? haystack.count, haystack.count)
        guard from >= 0, !needle.isEmpty, end - from >= needle.count else { return nil }
        return haystack.withUnsafeBytes { h -> Int? in
            needle.withUnsafeBytes { n -> Int? in
                let base = h.baseAddress!, first = Int32(needle[0])
                var i = from
                let last = end - needle.count       // last possible start
                while i <= last {
                    guard let hit = memchr(base + i, first, last - i + 1) else { return nil }
                    let at = UnsafeRawPointer(hit) - base
                    if memcmp(base + at, n.baseAddress!, n.count) == 0 { return at }
                    i = at + 1
                }
                return nil
            }
        }
    }
}

/// Why a multipart body was refused.
public enum MultipartError: Error, Equatable, CustomStringConvertible {
    case notMultipart
    case invalidBoundary(String)
    case missingDelimiter
    case missingClosingDelimiter
    case tooManyParts(limit: Int)
    case headersTooLarge(limit: Int)
    case duplicatePart(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .notMultipart: return "the request body must be multipart/form-data"
        case .invalidBoundary(let r): return "invalid multipart boundary: \(r)"
        case .missingDelimiter: return "the body does not contain the multipart boundary"
        case .missingClosingDelimiter: return "the multipart body ends before its closing boundary (truncated upload?)"
        case .tooManyParts(let n): return "more than \(n) parts in the multipart body"
        case .headersTooLarge(let n): return "a part's headers are longer than \(n) bytes"
        case .duplicatePart(let name): return "the field \(name) is given twice"
        case .malformed(let r): return "malformed multipart body: \(r)"
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
