import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose response went out before its request's body was read to the end
/// (413, 408, 401, a full queue, a route that ignores bodies). Left alone, Hummingbird would
/// read and discard the rest of the body to reuse the connection, so a client could keep a
/// connection forever by trickling a body after its answer, or make the server read gigabytes
/// after a 413.
///
/// Such a response gets `Connection: close`; once it is written the output is shut (FIN) and
/// the rest of the body is dropped unread until it ends or `linger` passes, then the connection
/// closes. Not at once: closing a socket with unread input sends a reset, which can destroy the
/// response before the client has read it.
final class EarlyResponseCloser: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Longest wait for the rest of a body after an early response.
    static let lingerSeconds: Int64 = 2
    static let linger: TimeAmount = .seconds(lingerSeconds)

    /// Requests whose head / end was read, and responses begun; counted (not flags) so that a
    /// pipelined next request is not mistaken for the current one.
    private var headsRead = 0
    private var endsRead = 0
    private var responsesStarted = 0
    private var closeAfterResponse = false
    private var lingering = false
    private var lingerTimer: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head: headsRead += 1
        case .body: break
        case .end: endsRead += 1
        }
        guard lingering else { return context.fireChannelRead(data) }
        // The answer is out: drop the rest; the body's end is the moment to close cleanly.
        if case .end = part { closeNow(context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where response.status.kind != .informational:
            responsesStarted += 1
            // The request this response answers is number `responsesStarted`.
            if endsRead < responsesStarted {
                closeAfterResponse = true
                response.headerFields[.connection] = "close"
                return context.write(wrapOutboundOut(.head(response)), promise: promise)
            }
        case .end where closeAfterResponse:
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in self.startLingering(context) }
            return
        default:
            break
        }
        context.write(data, promise: promise)
    }

    private func startLingering(_ context: ChannelHandlerContext) {
        guard !lingering else { return }
        lingering = true
        context.close(mode: .output, promise: nil)
        lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) { self.closeNow(context) }
    }

    private func closeNow(_ context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
    }
}

@available(*, unavailable)
extension EarlyResponseCloser: Sendable {}
