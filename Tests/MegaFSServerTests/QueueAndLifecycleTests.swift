import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MegaFSSwap
import NIOCore
import ServiceLifecycle
import Testing
@testable import MegaFSServer

@Suite struct QueueAndLifecycleTests {
    func gatedServer(_ adjust: (inout ServerConfiguration) -> Void) throws -> (MegaFSServer, GatedNetworks) {
        let gated = GatedNetworks(try fixtureNetworks.get()["ftm"]!)
        let server = try makeServer(adjust, engine: SwapEngine(networks: ["ftm": gated]))
        return (server, gated)
    }

    @Test func aFullQueueGets503WithRetryAfter() async throws {
        let (server, gated) = try gatedServer { $0.concurrency = 1; $0.queueLength = 1 }
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        try await application(server).test(.router) { client in
            // One swap runs (held at the gate), one waits: the third is turned away at once.
            async let first = client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(await eventually { gated.entered == 1 })
            async let second = client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(await eventually { await server.queue.waiting == 1 })
            let third = try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(third.status == .serviceUnavailable)
            let errorFields = try errorBody(third)
            #expect(errorFields["error"] == "queue_full")
            let retry = third.headers[.retryAfter].flatMap(Int.init)
            #expect(retry != nil && retry! >= 1, "Retry-After \(third.headers[.retryAfter] ?? "missing")")
            let metrics = String(bytes: server.metrics.exposition(), encoding: .utf8) ?? ""
            #expect(metrics.contains("megafs_swap_queue_depth 1"))
            #expect(metrics.contains("megafs_swaps_in_flight 1"))
            gated.open()
            #expect(try await first.status == .ok)
            #expect(try await second.status == .ok)
            // Both slots come back.
            #expect(await eventually { await server.queue.admitted == 0 })
            #expect(await eventually { await server.queue.running == 0 })
            let again = try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(again.status == .ok)
            let text = String(bytes: server.metrics.exposition(), encoding: .utf8) ?? ""
            #expect(text.contains(#"megafs_rejected_total{reason="queue_full"} 1"#))
            #expect(text.contains(#"megafs_http_requests_total{route="/v1/swap",status="503"} 1"#))
        }
    }

    @Test func theDeadlineBoundsWaitingAndRunning() async throws {
        let (server, gated) = try gatedServer { $0.concurrency = 1; $0.queueLength = 2; $0.deadline = .milliseconds(400) }
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        try await application(server).test(.router) { client in
            let start = ContinuousClock.now
            async let running = client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(await eventually { gated.entered == 1 })
            let waiting = try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(waiting.status == .serviceUnavailable)
            let errorFields = try errorBody(waiting)
            #expect(errorFields["error"] == "deadline_exceeded")
            let held = try await running
            #expect(held.status == .serviceUnavailable)
            let heldFields = try errorBody(held)
            #expect(heldFields["error"] == "deadline_exceeded")
            #expect(held.headers[.retryAfter] != nil)
            #expect(ContinuousClock.now - start < .seconds(5))
            // The stuck swap still holds its slot until it really ends.
            #expect(await server.queue.running == 1)
            gated.open()
            #expect(await eventually { await server.queue.admitted == 0 })
            #expect(await server.queue.running == 0)
            let after = try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer)
            #expect(after.status == .ok)
        }
    }

    @Test func shutdownDrainsRequestsInFlight() async throws {
        let (server, gated) = try gatedServer { $0.concurrency = 1; $0.queueLength = 2 }
        let port = PortBox()
        let app = server.makeApplication(logger: quietLogger) { channel in port.set(channel.localAddress?.port ?? 0) }
        let loader = ModelLoaderService(engine: server.engine, metrics: server.metrics, logger: quietLogger,
                                        load: { throw TestFailure("already loaded") })
        let group = ServiceGroup(configuration: .init(services: [app, loader], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await eventually { port.value > 0 })
            let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try wideTarget())
            let request = rawSwapRequest(port: port.value, form: form)
            async let inFlight = rawHTTP(port: port.value, request: request)
            #expect(await eventually { gated.entered == 1 })

            await group.triggerGracefulShutdown()
            #expect(await eventually { server.engine.draining })
            try await Task.sleep(for: .milliseconds(200))
            gated.open()
            let response = try await inFlight
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "image/png")
            let image = try ImageIO.decode(response.body)
            #expect(image.width == 320 && image.height == 200)
            try await tasks.waitForAll()   // the group ends once the request is answered
            // Nothing listens any more.
            await #expect(throws: (any Error).self) {
                _ = try await rawHTTP(port: port.value, request: Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            }
        }
    }

    @Test func queueAdmissionAndOrder() async throws {
        let queue = SwapQueue(concurrency: 1, queueLength: 1)
        let a = try await queue.admit()
        let b = try await queue.admit()
        await #expect(throws: SwapQueue.Rejection.full) { try await queue.admit() }
        try await queue.waitForSlot(a, deadline: .now + .seconds(5))
        // b waits; an expired deadline gives .deadline and leaves the queue.
        await #expect(throws: SwapQueue.Rejection.deadline) { try await queue.waitForSlot(b, deadline: .now + .milliseconds(50)) }
        #expect(await queue.waiting == 0)
        async let bGetsIt: Void = queue.waitForSlot(b, deadline: .now + .seconds(5))
        #expect(await eventually { await queue.waiting == 1 })
        await queue.release()
        try await bGetsIt
        #expect(await queue.running == 1)
        await queue.release()
        await queue.leave(a)
        await queue.leave(b)
        #expect(await queue.running == 0)
        #expect(await queue.admitted == 0)
    }
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _value = 0
    var value: Int { lock.withLock { _value } }
    func set(_ v: Int) { lock.withLock { _value = v } }
}
