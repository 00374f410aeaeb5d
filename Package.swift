// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "megafs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "megafs", targets: ["megafs"]),
        // For the fuzz package (Fuzz/Package.swift, issue #10).
        .library(name: "MegaFSGraph", targets: ["MegaFSGraph"]),
        .library(name: "MegaFSONNX", targets: ["MegaFSONNX"]),
        .library(name: "MegaFSFormat", targets: ["MegaFSFormat"]),
        .library(name: "MegaFSRuntime", targets: ["MegaFSRuntime"]),
        .library(name: "MegaFSSwap", targets: ["MegaFSSwap"]),
        .library(name: "MegaFSMultipart", targets: ["MegaFSMultipart"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // megafs serve (Sources/MegaFSServer).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries (Debian: libprotobuf-c-dev, libzstd-dev, libopenblas-dev).
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        // protoc-c output for formats/onnx.proto, committed (see formats/README.md).
        .target(name: "CONNX", dependencies: ["CProtobufC"],
                cSettings: [.unsafeFlags(["-w"])]),

        .target(name: "MegaFSGraph"),
        .target(name: "MegaFSONNX", dependencies: ["MegaFSGraph", "CONNX", "CProtobufC"]),
        .target(name: "MegaFSFormat", dependencies: ["MegaFSGraph", "CZstd"]),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "MegaFSRuntime", dependencies: ["MegaFSGraph", "MegaFSFormat", "CKernels", "COpenBLAS"]),
        .target(name: "MegaFSSwap", dependencies: ["MegaFSGraph", "MegaFSFormat", "MegaFSRuntime", "CKernels", "CPNG", "CZlib", "CTurboJPEG"]),
        .target(name: "MegaFSQuant", dependencies: ["MegaFSGraph", "MegaFSFormat", "MegaFSRuntime"]),
        .target(name: "MegaFSConverter", dependencies: ["MegaFSGraph", "MegaFSONNX", "MegaFSFormat", "MegaFSQuant"]),
        // The server's multipart/form-data parser, without dependencies so it can be fuzzed alone.
        .target(name: "MegaFSMultipart"),
        .target(name: "MegaFSServer", dependencies: [
            "MegaFSSwap", "MegaFSMultipart", "MegaFSRuntime", "MegaFSGraph",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "megafs", dependencies: [
            "MegaFSGraph", "MegaFSONNX", "MegaFSFormat", "MegaFSConverter", "MegaFSRuntime", "MegaFSSwap",
            "MegaFSServer", "MegaFSQuant",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "MegaFSGraphTests", dependencies: ["MegaFSGraph"]),
        .testTarget(name: "MegaFSONNXTests", dependencies: ["MegaFSONNX", "MegaFSGraph", "CONNX", "CProtobufC"]),
        .testTarget(name: "MegaFSFormatTests", dependencies: ["MegaFSFormat", "MegaFSGraph", "MegaFSONNX"]),
        .testTarget(name: "MegaFSRuntimeTests", dependencies: ["MegaFSRuntime", "MegaFSGraph", "MegaFSFormat", "MegaFSONNX"]),
        .testTarget(name: "MegaFSSwapTests", dependencies: ["MegaFSSwap", "MegaFSGraph", "MegaFSRuntime", "MegaFSConverter", "CZlib"]),
        .testTarget(name: "MegaFSServerTests", dependencies: [
            "MegaFSServer", "MegaFSSwap", "MegaFSConverter",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "MegaFSConverterTests", dependencies: ["MegaFSConverter", "MegaFSGraph", "MegaFSFormat", "MegaFSONNX"]),
        .testTarget(name: "MegaFSQuantTests", dependencies: ["MegaFSQuant", "MegaFSConverter", "MegaFSRuntime", "MegaFSGraph", "MegaFSFormat", "MegaFSONNX"]),
    ]
)
