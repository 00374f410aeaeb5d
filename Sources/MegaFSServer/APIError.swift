import Foundation
import HTTPTypes
import Hummingbird
import MegaFSSwap

/// An error answered as JSON: `{"error": CODE, "message": TEXT, "request_id": ID}`, with
/// `Retry-After` on 503 and `WWW-Authenticate` on 401.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code (documented in the OpenAPI description).
    public var code: String
    public var message: String
    /// Seconds, for 503.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    static func badRequest(_ code: String, _ message: String) -> APIError { APIError(.badRequest, code, message) }
    static let deadlineExceeded = APIError(.serviceUnavailable, "deadline_exceeded",
                                           "the request took longer than the server's deadline; try again later")
    static let unauthorized = APIError(.unauthorized, "unauthorized", "a valid bearer token is required (Authorization: Bearer TOKEN)")

    struct Body: Encodable {
        var error: String
        var message: String
        var request_id: String
    }

    func response(requestID: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"megafs\"" }
        if status == .methodNotAllowed { headers[.allow] = "POST" }   // only /v1/swap answers 405
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Body(error: code, message: message, request_id: requestID))) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any error as an API error: ours as they are, Hummingbird's by status, image and multipart
    /// errors as 4xx, everything else as 500 (its text is logged, not sent).
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError:
            return e
        case let e as MultipartError:
            return e == .notMultipart ? APIError(.unsupportedMediaType, "not_multipart", e.description)
                                      : APIError(.badRequest, "bad_multipart", e.description)
        case let e as ImageError:
            if case .tooLarge = e { return APIError(.contentTooLarge, "image_too_large", e.description) }
            return APIError(.unprocessableContent, "invalid_image", e.description)
        case let e as any HTTPResponseError:
            let status = e.status
            let code: String
            switch status.code {
            case 404: code = "not_found"
            case 405: code = "method_not_allowed"
            case 413: code = "body_too_large"
            case 400..<500: code = "bad_request"
            default: code = "internal"
            }
            let message = (e as? HTTPError)?.body ?? status.reasonPhrase
            return APIError(status, code, message)
        default:
            return APIError(.internalServerError, "internal", "the swap failed inside the server; see its log")
        }
    }
}
