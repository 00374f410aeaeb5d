import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MegaFSSwap
import Testing
@testable import MegaFSServer

/// Every bad request gets a 4xx with a JSON error body (`error`, `message`, `request_id`).
@Suite struct BadRequestTests {
    func expectError(_ client: some TestClientProtocol, _ uri: String, method: HTTPRequest.Method = .post,
                     headers: HTTPFields = [:], body: [UInt8]? = nil,
                     status: HTTPResponse.Status, code: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) }) { response in
            #expect(response.status == status, "\(uri): \(String(buffer: response.body))", sourceLocation: sourceLocation)
            let errorFields = try errorBody(response)
            #expect(errorFields["error"] == code, sourceLocation: sourceLocation)
        }
    }

    @Test func malformedRequestsGet4xxJSON() async throws {
        let server = try makeServer()
        let source = try sample("synthetic_face.png"), target = try sample("astronaut_face.png")
        let good = FormBody.swap(source: source, target: target)
        try await application(server).test(.router) { client in
            // Not multipart at all.
            var json = HTTPFields()
            json[.contentType] = "application/json"
            try await expectError(client, "/v1/swap", headers: json, body: Array("{}".utf8), status: .unsupportedMediaType, code: "not_multipart")
            try await expectError(client, "/v1/swap", body: good.bytes, status: .unsupportedMediaType, code: "not_multipart")
            // A boundary that is not RFC 2046's.
            var badBoundary = HTTPFields()
            badBoundary[.contentType] = "multipart/form-data; boundary=" + String(repeating: "x", count: 71)
            try await expectError(client, "/v1/swap", headers: badBoundary, body: good.bytes, status: .badRequest, code: "bad_multipart")
            // Truncated upload: the closing boundary is missing.
            try await expectError(client, "/v1/swap", headers: good.headers, body: Array(good.bytes.dropLast(40)),
                                  status: .badRequest, code: "bad_multipart")
            // Missing, empty, unknown and repeated fields.
            var form = FormBody()
            form.parts = [("source", "a.png", source)]
            try await expectError(client, "/v1/swap", headers: form.headers, body: form.bytes, status: .badRequest, code: "missing_field")
            form.parts = [("source", "a.png", source), ("target", "b.png", [])]
            try await expectError(client, "/v1/swap", headers: form.headers, body: form.bytes, status: .badRequest, code: "empty_field")
            form.parts = [("source", "a.png", source), ("target", "b.png", target), ("extra", nil, [1])]
            try await expectError(client, "/v1/swap", headers: form.headers, body: form.bytes, status: .badRequest, code: "unknown_field")
            form.parts = [("source", "a.png", source), ("source", "b.png", target)]
            try await expectError(client, "/v1/swap", headers: form.headers, body: form.bytes, status: .badRequest, code: "bad_multipart")
            // Query parameters.
            try await expectError(client, "/v1/swap?type=xyz", headers: good.headers, body: good.bytes, status: .badRequest, code: "bad_query")
            try await expectError(client, "/v1/swap?type=lcr", headers: good.headers, body: good.bytes, status: .badRequest, code: "unknown_type")
            try await expectError(client, "/v1/swap?format=gif", headers: good.headers, body: good.bytes, status: .badRequest, code: "bad_query")
            try await expectError(client, "/v1/swap?refine=maybe", headers: good.headers, body: good.bytes, status: .badRequest, code: "bad_query")
            try await expectError(client, "/v1/swap?colour=red", headers: good.headers, body: good.bytes, status: .badRequest, code: "bad_query")
            // Routes and methods.
            try await expectError(client, "/v2/swap", status: .notFound, code: "not_found")
            try await expectError(client, "/v1/swap", method: .get, status: .methodNotAllowed, code: "method_not_allowed")
        }
    }

    @Test func corruptImagesGet422() async throws {
        let server = try makeServer()
        let source = try sample("synthetic_face.png"), target = try sample("astronaut_face.png")
        let labels = try sample("astronaut_face_labels.png")
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let cases: [(FormBody, String)] = [
            (.swap(source: noise, target: target), "random bytes"),
            (.swap(source: source, target: Array(target.prefix(target.count / 2))), "truncated PNG"),
            (.swap(source: Array(source.prefix(6)), target: target), "shorter than a signature"),
            (.swap(source: [0xFF, 0xD8, 0xFF] + noise, target: target), "JPEG header then noise"),
            (.swap(source: source, target: target, mask: target), "colour image as label map"),
            (.swap(source: source, target: try wideTarget(), mask: labels), "label map of another aspect ratio"),
        ]
        try await application(server).test(.router) { client in
            for (form, what) in cases {
                try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                    #expect(response.status == .unprocessableContent, "\(what): \(String(buffer: response.body))")
                    let errorFields = try errorBody(response)
                    #expect(errorFields["error"] == "invalid_image", "\(what)")
                }
            }
            // The server still swaps afterwards.
            let good = FormBody.swap(source: source, target: target)
            try await client.execute(uri: "/v1/swap", method: .post, headers: good.headers, body: good.buffer) { #expect($0.status == .ok) }
        }
    }

    @Test func oversizedBodiesAndImagesGet413() async throws {
        let source = try sample("synthetic_face.png"), target = try sample("astronaut_face.png")
        let form = FormBody.swap(source: source, target: target)
        // Body limit below the form's size: refused from Content-Length (router) and while
        // reading the body (live, where the server streams it).
        let small = try makeServer { $0.maxBodyBytes = 100_000 }
        try await application(small).test(.router) { client in
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .contentTooLarge)
                let errorFields = try errorBody(response)
                #expect(errorFields["error"] == "body_too_large")
            }
        }
        try await application(small).test(.live) { client in
            var headers = form.headers
            headers[.transferEncoding] = "chunked"   // no Content-Length: the limit applies while reading
            try await client.execute(uri: "/v1/swap", method: .post, headers: headers, body: form.buffer) { response in
                #expect(response.status == .contentTooLarge)
                let errorFields = try errorBody(response)
                #expect(errorFields["error"] == "body_too_large")
            }
            // That early 413 closes its connection (EarlyResponseCloser); a new one is served.
            let port = try #require(client.port)
            let health = try await rawHTTP(port: port, request: Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            #expect(health.status == 200)
        }
        // Pixel limit below 256x256: refused from the header, before decoding.
        let fewPixels = try makeServer { $0.maxPixels = 256 * 255 }
        try await application(fewPixels).test(.router) { client in
            try await client.execute(uri: "/v1/swap", method: .post, headers: form.headers, body: form.buffer) { response in
                #expect(response.status == .contentTooLarge)
                let body = try errorBody(response)
                #expect(body["error"] == "image_too_large")
                #expect(body["message"]?.contains("source") == true)
            }
        }
    }

    @Test func aTokenIsRequiredWhenSet() async throws {
        let server = try makeServer { $0.token = BearerToken("s3cret-token") }
        let form = FormBody.swap(source: try sample("synthetic_face.png"), target: try sample("astronaut_face.png"))
        try await application(server).test(.router) { client in
            for auth in [nil, "Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-tokenX", "Basic s3cret-token", "s3cret-token"] {
                var headers = form.headers
                if let auth { headers[.authorization] = auth }
                try await client.execute(uri: "/v1/swap", method: .post, headers: headers, body: form.buffer) { response in
                    #expect(response.status == .unauthorized, "\(auth ?? "no header")")
                    #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                    let errorFields = try errorBody(response)
                    #expect(errorFields["error"] == "unauthorized")
                }
            }
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
            var headers = form.headers
            headers[.authorization] = "Bearer s3cret-token"
            try await client.execute(uri: "/v1/swap", method: .post, headers: headers, body: form.buffer) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "bearer s3cret-token"]) { #expect($0.status == .ok) }
            // Probes and the page stay open.
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func tokenFile() throws {
        let path = NSTemporaryDirectory() + "megafs-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "  abc123  \nignored\n".write(toFile: path, atomically: true, encoding: .utf8)
        let token = try BearerToken.read(path: path)
        #expect(token.accepts([.authorization: "Bearer abc123"]))
        #expect(!token.accepts([.authorization: "Bearer abc1234"]))
        try "\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ServerSetupError.self) { try BearerToken.read(path: path) }
        #expect(throws: ServerSetupError.self) { try BearerToken.read(path: path + ".missing") }
    }
}
