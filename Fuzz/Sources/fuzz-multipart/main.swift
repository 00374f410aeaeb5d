// The server's multipart/form-data parsing, both halves: the Content-Type header (boundary
// parameter) and the body. Input layout: the Content-Type value up to the first "\n", then
// the body. With a boundary from the header, the body is parsed as the server does (default
// limits); the parse result is checked against the parser's documented guarantees.
import MegaFSMultipart

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let newline = input.firstIndex(of: UInt8(ascii: "\n")) ?? input.count
    let contentType = String(decoding: input[..<newline], as: UTF8.self)
    let body = newline < input.count ? Array(input[(newline + 1)...]) : []
    guard let boundary = try? MultipartForm.boundary(contentType: contentType) else { return 0 }
    precondition((1...70).contains(boundary.utf8.count), "accepted boundary of \(boundary.utf8.count) bytes")
    let limits = MultipartForm.Limits()
    guard let form = try? MultipartForm(body: body, boundary: boundary, limits: limits) else { return 0 }
    // Guarantees from the parser's documentation: at most maxParts parts, unique non-empty
    // names, and part contents copied out of the body (never more bytes than it has).
    precondition(form.parts.count <= limits.maxParts)
    precondition(Set(form.parts.map(\.name)).count == form.parts.count)
    precondition(form.parts.allSatisfy { !$0.name.isEmpty })
    precondition(form.parts.reduce(0) { $0 + $1.body.count } <= body.count)
    for part in form.parts { precondition(form[part.name]?.body == part.body) }
    return 0
}
