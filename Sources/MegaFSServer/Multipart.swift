// The multipart parser lives in its own dependency-free target, MegaFSMultipart, so the fuzz
// package (Fuzz/, issue #10) can build it under the sanitizers without Hummingbird and NIO.
// Re-exported so that `import MegaFSServer` still brings `MultipartForm` and `MultipartError`.
@_exported import MegaFSMultipart
