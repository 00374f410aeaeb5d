// swift-tools-version: 6.0
// libFuzzer targets for megafs (issue #10). A separate package so that the main build and
// `swift test` never see the sanitizer flags. Build and run with `scripts/fuzz.sh`.
import Foundation
import PackageDescription

// A path dependency's package identity is its folder's name, which depends on where the
// repository was cloned; compute it rather than hard-coding it.
let megafs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: megafs) },
        // No Swift `main`: libFuzzer's main calls LLVMFuzzerTestOneInput.
        swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
    name: "megafs-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: "..")],
    targets: [
        fuzzTarget("fuzz-onnx", ["MegaFSONNX", "MegaFSGraph"]),
        fuzzTarget("fuzz-model", ["MegaFSFormat", "MegaFSGraph", "MegaFSRuntime"]),
        fuzzTarget("fuzz-image", ["MegaFSSwap"]),
        fuzzTarget("fuzz-mask", ["MegaFSSwap"]),
        fuzzTarget("fuzz-multipart", ["MegaFSMultipart"]),
    ]
)
