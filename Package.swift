// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "megafs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "megafs", targets: ["megafs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        .target(name: "MegaFSSwap", dependencies: ["MegaFSGraph", "MegaFSFormat", "MegaFSRuntime", "CPNG", "CTurboJPEG"]),
        .target(name: "MegaFSConverter", dependencies: ["MegaFSGraph", "MegaFSONNX", "MegaFSFormat"]),
        .executableTarget(name: "megafs", dependencies: [
            "MegaFSGraph", "MegaFSONNX", "MegaFSFormat", "MegaFSConverter", "MegaFSRuntime", "MegaFSSwap",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "MegaFSGraphTests", dependencies: ["MegaFSGraph"]),
        .testTarget(name: "MegaFSONNXTests", dependencies: ["MegaFSONNX", "MegaFSGraph", "CONNX", "CProtobufC"]),
        .testTarget(name: "MegaFSFormatTests", dependencies: ["MegaFSFormat", "MegaFSGraph", "MegaFSONNX"]),
        .testTarget(name: "MegaFSRuntimeTests", dependencies: ["MegaFSRuntime", "MegaFSGraph", "MegaFSFormat", "MegaFSONNX"]),
        .testTarget(name: "MegaFSSwapTests", dependencies: ["MegaFSSwap", "MegaFSGraph", "MegaFSRuntime", "MegaFSConverter"]),
        .testTarget(name: "MegaFSConverterTests", dependencies: ["MegaFSConverter", "MegaFSGraph", "MegaFSFormat", "MegaFSONNX"]),
    ]
)
