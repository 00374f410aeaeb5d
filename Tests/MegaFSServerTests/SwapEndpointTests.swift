import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MegaFSSwap
import Testing
@testable import MegaFSServer

@Suite struct SwapEndpointTests {
    @Test func swapReturnsAPNGOfTheTargetsSize() async throws {
        let server = try makeServer()
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try wideTarget())
        try await application(server).test(.router) { client in
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/png")
                let image = try ImageIO.decode([UInt8](buffer: response.body))
                #expect(image.width == 320 && image.height == 200)
                let timing = response.headers[HTTPField.Name("Server-Timing")!] ?? ""
                for stage in ["decode", "preprocess", "encode", "swap", "generate", "mask", "blend", "output"] {
                    #expect(timing.contains("\(stage);dur="), "Server-Timing lacks \(stage): \(timing)")
                }
                #expect(response.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false)
            }
        }
    }

    @Test func swapOverRealHTTPWithMaskRefineAndJPEG() async throws {
        let server = try makeServer()
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"),
                                 mask: try sample("astronaut_face_labels.png"))
        try await application(server).test(.live) { client in
            try await client.execute(uri: "/v1/swap?format=jpeg&refine=true&type=ftm", method: .post,
                                     headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/jpeg")
                let bytes = [UInt8](buffer: response.body)
                #expect(ImageFormat.detect(bytes) == .jpeg)
                let image = try ImageIO.decode(bytes)
                #expect(image.width == 256 && image.height == 256)
                #expect(response.headers[HTTPField.Name("Server-Timing")!]?.contains("refine;dur=") == true)
            }
        }
    }

    @Test func thePageAndTheProbes() async throws {
        let server = try makeServer()
        try await application(server).test(.router) { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                let html = String(buffer: response.body)
                #expect(html.contains("<form") && html.contains("/v1/swap") && html.contains("Server-Timing"))
            }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"types\":\"ftm\""))
            }
        }
    }

    @Test func readinessFollowsLoadingAndDraining() async throws {
        let engine = SwapEngine()
        let server = try makeServer(engine: engine)
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        try await application(server).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let errorFields = try errorBody(response)
                #expect(errorFields["error"] == "not_ready")
            }
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .serviceUnavailable)
                let errorFields = try errorBody(response)
                #expect(errorFields["error"] == "loading")
                #expect(response.headers[.retryAfter] != nil)
            }
            engine.setReady(try fixtureNetworks.get())
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            engine.setDraining()
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .serviceUnavailable)
                let errorFields = try errorBody(response)
                #expect(errorFields["error"] == "shutting_down")
            }
        }
    }

    @Test func metricsCountRequestsStagesQueueAndMemory() async throws {
        let server = try makeServer()
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        try await application(server).test(.router) { client in
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/swap?format=gif", method: .post, headers: form.headers, body: form.buffer) { #expect($0.status == .badRequest) }
            // The slot is given back just after the answer is sent.
            #expect(await eventually { await server.queue.running == 0 })
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                #expect(text.contains(#"megafs_http_requests_total{route="/v1/swap",status="200"} 1"#), "\(text)")
                #expect(text.contains(#"megafs_http_requests_total{route="/v1/swap",status="400"} 1"#))
                #expect(text.contains(#"megafs_swap_stage_duration_seconds_count{stage="generate"} 1"#))
                #expect(text.contains(#"megafs_swap_stage_duration_seconds_bucket{stage="encode",le="+Inf"} 1"#))
                #expect(text.contains("megafs_swap_queue_depth 0"))
                #expect(text.contains("megafs_swaps_in_flight 0"))
                #expect(text.contains("megafs_models_ready 1"))
                let rss = text.split(separator: "\n").first { $0.hasPrefix("megafs_resident_memory_bytes ") }
                    .flatMap { Double($0.split(separator: " ")[1]) } ?? 0
                #expect(rss > 1_000_000, "resident memory \(rss)")
            }
        }
    }

    @Test func theOpenAPIDescriptionCoversTheRoutesAndErrorCodes() throws {
        let text = try String(contentsOfFile: "\(repoRoot)/docs/openapi.yaml", encoding: .utf8)
        #expect(text.hasPrefix("openapi: 3."))
        for path in ["  /v1/swap:", "  /healthz:", "  /readyz:", "  /metrics:", "  /:"] {
            #expect(text.contains("\n\(path)\n"), "openapi.yaml lacks \(path)")
        }
        // Every error code the server sends is listed.
        let sources = try FileManager.default.contentsOfDirectory(atPath: "\(repoRoot)/Sources/MegaFSServer")
            .filter { $0.hasSuffix(".swift") }
            .map { try String(contentsOfFile: "\(repoRoot)/Sources/MegaFSServer/\($0)", encoding: .utf8) }
            .joined()
        let regex = try NSRegularExpression(pattern: #"(?:APIError\(\.[a-zA-Z]+, |badRequest\()"([a-z_]+)""#)
        let codes = Set(regex.matches(in: sources, range: NSRange(sources.startIndex..., in: sources)).compactMap {
            Range($0.range(at: 1), in: sources).map { String(sources[$0]) }
        })
        #expect(codes.count >= 12, "found only \(codes.sorted())")
        for code in codes { #expect(text.contains(code), "openapi.yaml does not list the error code \(code)") }
    }
}
