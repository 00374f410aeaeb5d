import Testing
@testable import MegaFSServer

@Suite struct MultipartTests {
    func parse(_ text: String, boundary: String = "XyZ", limits: MultipartForm.Limits = .init()) throws(MultipartError) -> MultipartForm {
        try MultipartForm(body: Array(text.utf8), boundary: boundary, limits: limits)
    }

    @Test func parsesWhatBrowsersAndCurlSend() throws {
        let body = "preamble to ignore\r\n--XyZ\r\n" +
            "Content-Disposition: form-data; name=\"source\"; filename=\"a \\\"b\\\".png\"\r\n" +
            "Content-Type: image/PNG; charset=binary\r\n\r\n" +
            "line1\r\n--Xy not a boundary\r\nline3\r\n" +
            "--XyZ  \r\n" +
            "content-disposition: form-data;name=target\r\n\r\n" +
            "\r\n" +
            "--XyZ\r\n" +
            "Content-Disposition: form-data; name=\"empty\"\r\n\r\n" +
            "\r\n--XyZ--\r\nepilogue"
        let form = try parse(body)
        #expect(form.parts.map(\.name) == ["source", "target", "empty"])
        #expect(form["source"]?.filename == "a \"b\".png")
        #expect(form["source"]?.contentType == "image/png")
        #expect(form["source"].map { String(decoding: $0.body, as: UTF8.self) } == "line1\r\n--Xy not a boundary\r\nline3")
        #expect(form["target"]?.body == [])
        #expect(form["target"]?.filename == nil)
        #expect(form["empty"]?.body == [])
    }

    @Test func binaryContentIsKeptExactly() throws {
        let payload: [UInt8] = (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 7919) } + Array("\r\n--XyZ".utf8.dropLast())
        let body = Array("--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".utf8) + payload + Array("\r\n--XyZ--".utf8)
        let form = try MultipartForm(body: body, boundary: "XyZ")
        #expect(form["f"]?.body == payload)
    }

    @Test func boundaryFromContentType() throws {
        #expect(try MultipartForm.boundary(contentType: "multipart/form-data; boundary=abc") == "abc")
        #expect(try MultipartForm.boundary(contentType: "Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"") == "a b:c")
        #expect(throws: MultipartError.notMultipart) { try MultipartForm.boundary(contentType: "application/json") }
        #expect(throws: MultipartError.notMultipart) { try MultipartForm.boundary(contentType: "") }
        #expect(throws: MultipartError.self) { try MultipartForm.boundary(contentType: "multipart/form-data") }
        #expect(throws: MultipartError.self) { try MultipartForm.boundary(contentType: "multipart/form-data; boundary=") }
        #expect(throws: MultipartError.self) { try MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"abc") }
        #expect(throws: MultipartError.self) { try MultipartForm.boundary(contentType: "multipart/form-data; boundary=a; boundary=b") }
        #expect(throws: MultipartError.self) { try MultipartForm.boundary(contentType: "multipart/form-data; boundary=ab\u{e9}") }
        #expect(throws: MultipartError.self) {
            try MultipartForm.boundary(contentType: "multipart/form-data; boundary=" + String(repeating: "a", count: 71))
        }
    }

    @Test func refusesWhatIsNotStrictlyValid() {
        let part = "Content-Disposition: form-data; name=\"a\"\r\n\r\nx"
        let cases: [(String, MultipartError?)] = [
            ("", .missingDelimiter),
            ("no boundary here", .missingDelimiter),
            ("--XyZ", .missingClosingDelimiter),
            ("--XyZ\r\n\(part)", .missingClosingDelimiter),                       // truncated
            ("--XyZ\r\n\(part)\r\n--XyZ", .missingClosingDelimiter),             // no "--" at the end
            ("--XyZ\n\(part)\n--XyZ--", nil),                                    // LF line ends
            ("--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", nil),  // no name
            ("--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--", nil),
            ("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", nil),        // no disposition
            ("--XyZ\r\n\r\nx\r\n--XyZ--", nil),                                  // no headers at all
            ("--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--XyZ--", nil),  // open quote
            ("--XyZ\r\nContent-Disposition form-data; name=a\r\n\r\nx\r\n--XyZ--", nil),     // no colon
            ("--XyZ\r\n\(part)\r\n--XyZ\r\n\(part)\r\n--XyZ--", .duplicatePart("a")),
            ("--XyZ\r\n\(part)\r\n--XyZjunk\r\n--XyZ--", nil),
        ]
        for (body, expected) in cases {
            do {
                let form = try parse(body)
                Issue.record("accepted \(body.debugDescription) as \(form.parts.map(\.name))")
            } catch {
                if let expected { #expect(error == expected, "\(body.debugDescription)") }
            }
        }
    }

    @Test func limitsOnPartsAndHeaders() {
        let part = { (i: Int) in "--XyZ\r\nContent-Disposition: form-data; name=\"p\(i)\"\r\n\r\nx\r\n" }
        let three = (0..<3).map(part).joined() + "--XyZ--"
        #expect(throws: MultipartError.tooManyParts(limit: 2)) { try parse(three, limits: .init(maxParts: 2)) }
        #expect((try? parse(three, limits: .init(maxParts: 3)))?.parts.count == 3)
        let longHeader = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: \(String(repeating: "p", count: 5000))\r\n\r\nx\r\n--XyZ--"
        #expect(throws: MultipartError.headersTooLarge(limit: 4096)) { try parse(longHeader) }
    }

    /// Every prefix and many single-byte corruptions of a valid body either parse or throw a
    /// MultipartError; none crashes (a small stand-in for the fuzzing of issue #10).
    @Test func truncationsAndCorruptionsNeverCrash() {
        let body = Array(("--XyZ\r\nContent-Disposition: form-data; name=\"source\"; filename=\"s.png\"\r\n" +
            "Content-Type: image/png\r\n\r\n\u{1}\u{2}\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\n" +
            "tt\r\n--XyZ--\r\n").utf8)
        #expect((try? MultipartForm(body: body, boundary: "XyZ"))?.parts.count == 2)
        var parsedPrefixes = 0
        for n in 0..<body.count {
            if (try? MultipartForm(body: Array(body.prefix(n)), boundary: "XyZ")) != nil { parsedPrefixes += 1 }
        }
        // Only prefixes that already hold the closing "--XyZ--" can parse.
        #expect(parsedPrefixes == 2)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var mutated = body
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] = [0, 13, 10, 45, 34, 59, 61, 255].randomElement(using: &rng)!
            }
            _ = try? MultipartForm(body: mutated, boundary: "XyZ")
        }
    }
}
