import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Around every request: turns every error into a JSON answer (never an empty 500), adds
/// `X-Request-Id`, counts and times the request, and logs one line with the request id.
struct RequestMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        var failure: APIError?
        do {
            response = try await next(request, context)
        } catch {
            let apiError = APIError.from(error)
            if apiError.status == .internalServerError {
                context.logger.error("request failed", metadata: ["error": .string("\(error)")])
            }
            failure = apiError
            response = apiError.response(requestID: context.id)
        }
        response.headers[HTTPField.Name("X-Request-Id")!] = context.id
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let route = context.endpointPath ?? "unmatched"
        metrics.request(route: route == "NotFound" ? "unmatched" : route, status: response.status.code, seconds: seconds)
        var metadata: Logger.Metadata = [
            "method": .string(request.method.rawValue),
            "path": .string(request.uri.path),
            "status": .stringConvertible(response.status.code),
            "duration_ms": .string(String(format: "%.1f", seconds * 1000)),
        ]
        if let failure { metadata["error"] = .string(failure.code) }
        // Probes and scrapes come every few seconds: only their failures are worth an info line.
        let quiet = ["/healthz", "/readyz", "/metrics"].contains(route) && response.status.code < 300
        context.logger.log(level: quiet ? .debug : .info, "request", metadata: metadata)
        return response
    }
}
