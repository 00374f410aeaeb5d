import MegaFSGraph

/// Constants of the `.mfs` model file format. `formats/FORMAT.md` is the specification;
/// the values here are the ones it names.
public enum ModelFileFormat {
    /// The 8 magic bytes at offset 0: `\x89 M F S \r \n \x1A \n` (PNG-style: a high byte, the name,
    /// and line-ending bytes that reveal text-mode mangling).
    public static let magic: [UInt8] = [0x89, 0x4D, 0x46, 0x53, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The major version this code writes and the only one it reads. A reader rejects any other.
    public static let majorVersion: UInt16 = 1
    /// The minor version this code writes. Readers accept any minor of their major: minor
    /// versions only add optional sections, appended record fields or new enum values that
    /// old readers reject specifically (e.g. a quantization scheme), never change old meaning.
    public static let minorVersion: UInt16 = 0
    /// Size of the fixed header, in bytes.
    public static let headerSize = 64
    /// Size of one section table entry written by this version (readers accept larger entries).
    public static let sectionEntrySize = 32
    /// Size of one frame table entry written by this version (readers accept larger entries).
    public static let frameEntrySize = 56
    /// Alignment of sections and frames in the file, and of tensors in the raw data stream.
    public static let alignment = 64
    /// Default raw size of a weight frame.
    public static let defaultFrameSize = 4 << 20
}

/// The kinds of section in the section table.
public enum SectionKind: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case graph = 1
    case metadata = 2
    case tensors = 3
    case frames = 4
    case data = 5

    public var description: String {
        switch self {
        case .graph: return "graph"
        case .metadata: return "metadata"
        case .tensors: return "tensor directory"
        case .frames: return "frame table"
        case .data: return "data"
        }
    }
}

/// Section flags (bit set).
public enum SectionFlags {
    /// A reader that does not know the section's kind must reject the file.
    public static let required: UInt32 = 1
}

/// How a frame's stored bytes are encoded.
public enum FrameCodec: UInt8, Sendable, CustomStringConvertible {
    /// The stored bytes are the (filtered) raw bytes.
    case stored = 0
    /// The stored bytes are exactly one zstd frame.
    case zstd = 1
    public var description: String { self == .stored ? "stored" : "zstd" }
}

/// The filter applied to a frame's raw bytes before compression.
public enum FrameFilter: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    /// Blosc-style byte shuffle with the frame's element size.
    case byteShuffle = 1
    public var description: String { self == .none ? "none" : "shuffle" }
}

/// Hard limits a reader enforces before trusting any size field (and a writer enforces too,
/// so every file it writes can be read back). Counts are also checked against the bytes left
/// in their section, so a lying count fails before anything is allocated for it.
public enum ModelFileLimits {
    public static let maxSections = 64
    public static let maxSectionEntrySize = 1024
    /// Largest graph, metadata, tensor directory or frame table section (they are read whole).
    public static let maxSectionBytes = 256 << 20
    public static let maxTensors = 1 << 20
    public static let maxRank = 32
    public static let maxElementsPerTensor = 1 << 34
    public static let maxTensorBytes = 1 << 35
    /// Default cap on the sum of raw tensor bytes a reader will allocate (`ReadOptions` can
    /// raise or lower it). The largest MegaFS network is about 1 GB.
    public static let maxTotalRawBytes = 8 << 30
    /// Default cap on how many times the tensors may outgrow the file, beyond
    /// `expansionAllowance` (`ReadOptions.maxExpansionRatio`). Trained or random weights
    /// compress about 1.1x; only constant-filled tensors (zeros) compress far more, and a
    /// converted MegaFS model holds none larger than a few MB. Without this a few-kB file of
    /// zeros frames could make the reader commit `maxTotalRawBytes`.
    public static let maxExpansionRatio = 64
    /// Raw tensor bytes allowed whatever the file size (small models, zero biases).
    public static let expansionAllowance = 64 << 20

    /// `fileSize * ratio + expansionAllowance`, saturating.
    public static func expandedBytesAllowed(fileSize: UInt64, ratio: UInt64) -> UInt64 {
        let (scaled, o1) = fileSize.multipliedReportingOverflow(by: ratio)
        let (sum, o2) = scaled.addingReportingOverflow(UInt64(expansionAllowance))
        return o1 || o2 ? .max : sum
    }
    public static let maxFrames = 1 << 22
    public static let maxFrameRawBytes = 256 << 20
    public static let maxStringBytes = 1 << 20
    public static let maxStrings = 1 << 24
    /// The full-size MegaFS networks have 340-1030 nodes; a million-node file is hostile.
    public static let maxNodes = 1 << 18
    public static let maxNodeInputsOutputs = 1 << 16
    public static let maxAttributesPerNode = 1 << 12
    /// Elements in one `floats`/`ints`/`strings` attribute.
    public static let maxAttributeElements = 1 << 24
    public static let maxAttributeTensorBytes = 64 << 20
    public static let maxMetadataEntries = 1 << 16
    public static let maxGraphValues = 1 << 22
    public static let maxOpsets = 1 << 10
    /// Largest quantization record payload.
    public static let maxQuantizationPayload = 1 << 16
}

/// Everything that can go wrong reading or writing a model file. Each case names the file,
/// what was being read and where (file offsets in bytes).
public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    /// The first bytes are not the `.mfs` magic.
    case notAModelFile(path: String, found: String)
    /// The file's major version is not one this reader knows.
    case unsupportedVersion(path: String, major: Int, minor: Int, supportedMajor: Int)
    /// The file ends before something it declares.
    case truncated(path: String, what: String, needed: UInt64, fileSize: UInt64)
    /// An offset or length points outside where it must lie.
    case outOfRange(path: String, what: String, offset: UInt64, length: UInt64, bound: String)
    /// A checksum does not match the bytes.
    case checksumMismatch(path: String, what: String, expected: UInt64, actual: UInt64)
    /// A zstd frame that cannot be decoded or whose content size is not the declared one.
    case corruptFrame(path: String, frame: Int, detail: String)
    /// A size or count above a `ModelFileLimits` (or `ReadOptions`) limit.
    case limitExceeded(path: String, what: String, value: UInt64, limit: UInt64)
    /// Structurally invalid content: bad UTF-8, duplicate names, unknown type codes, ...
    case malformed(path: String, what: String, detail: String)
    /// Valid for a newer reader (an unknown required section, quantization scheme, ...).
    case unsupportedFeature(path: String, what: String)
    /// A system call failed.
    case io(path: String, operation: String, message: String)
    /// The graph cannot be written (a limit, a missing tensor, a bad quantization record, ...).
    case invalidInput(String)
    /// The progress callback asked to stop.
    case cancelled

    public var description: String {
        switch self {
        case .notAModelFile(let path, let found):
            return "\(path): not a MegaFS model file (expected magic 89 4D 46 53 0D 0A 1A 0A at offset 0, found \(found))"
        case .unsupportedVersion(let path, let major, let minor, let supported):
            return "\(path): format version \(major).\(minor) is not supported (this reader reads major version \(supported))"
        case .truncated(let path, let what, let needed, let fileSize):
            return "\(path): truncated: \(what) needs \(needed) bytes but the file has \(fileSize)"
        case .outOfRange(let path, let what, let offset, let length, let bound):
            return "\(path): \(what) at offset \(offset) length \(length) lies outside \(bound)"
        case .checksumMismatch(let path, let what, let expected, let actual):
            return "\(path): checksum mismatch in \(what): stored \(hex64(expected)), computed \(hex64(actual))"
        case .corruptFrame(let path, let frame, let detail):
            return "\(path): frame \(frame): \(detail)"
        case .limitExceeded(let path, let what, let value, let limit):
            return "\(path): \(what) is \(value), above the limit of \(limit)"
        case .malformed(let path, let what, let detail):
            return "\(path): malformed \(what): \(detail)"
        case .unsupportedFeature(let path, let what):
            return "\(path): unsupported by this reader: \(what)"
        case .io(let path, let operation, let message):
            return "\(path): \(operation) failed: \(message)"
        case .invalidInput(let message):
            return "cannot write model file: \(message)"
        case .cancelled:
            return "cancelled"
        }
    }
}

func hex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
}

@inline(__always) func alignUp(_ v: Int, _ a: Int = ModelFileFormat.alignment) -> Int {
    (v + a - 1) / a * a
}

@inline(__always) func alignUp(_ v: UInt64, _ a: UInt64 = UInt64(ModelFileFormat.alignment)) -> UInt64 {
    (v + a - 1) / a * a
}

/// Recommended metadata keys. The writer stores every entry of `Graph.metadata` whatever
/// its key; these are the ones the converter fills and tools display.
public enum ModelMetadataKey {
    /// Lower-case hex SHA-256 of the source ONNX file.
    public static let sourceSHA256 = "source.sha256"
    /// File name of the source ONNX file.
    public static let sourceName = "source.name"
    /// Version string of the converter that wrote the file.
    public static let converterVersion = "converter.version"
    /// Default-domain ONNX opset, decimal.
    public static let opset = "onnx.opset"
    /// "encoder", "swapper.ftm", "swapper.injection", "swapper.lcr", "generator" when recognised.
    public static let modelKind = "model.kind"
    /// Graph inputs as `name:dtype[d0,d1,...]` joined by ";" (symbolic dims by name, "?" unknown).
    public static let inputs = "graph.inputs"
    /// Graph outputs, same syntax as `inputs`.
    public static let outputs = "graph.outputs"
    /// "int8-weights" when weights were quantized (`megafs convert --quantize int8`), with
    /// `quantization.weights` the count of int8 weights and `quantization.drift` the measured
    /// drift (1 − cosine) when a drift budget chose the float32 ones.
    public static let quantization = "quantization"
    public static let quantizedWeights = "quantization.weights"
    public static let quantizationDrift = "quantization.drift"
}

/// Helpers to build the recommended metadata entries.
public enum ModelMetadata {
    /// `name:dtype[dims]` entries joined by ";", e.g. `input:float32[N,3,256,256]`.
    public static func describe(_ values: [ValueInfo]) -> String {
        values.map { "\($0.name):\($0.type)" }.joined(separator: ";")
    }

    /// The recommended entries for `graph` (inputs, outputs, opset) plus the given facts.
    public static func standardEntries(for graph: Graph, sourceSHA256: String? = nil,
                                       sourceName: String? = nil, converterVersion: String? = nil,
                                       modelKind: String? = nil) -> [String: String] {
        var m: [String: String] = [
            ModelMetadataKey.inputs: describe(graph.inputs),
            ModelMetadataKey.outputs: describe(graph.outputs),
            ModelMetadataKey.opset: String(graph.opset),
        ]
        if let sourceSHA256 { m[ModelMetadataKey.sourceSHA256] = sourceSHA256 }
        if let sourceName { m[ModelMetadataKey.sourceName] = sourceName }
        if let converterVersion { m[ModelMetadataKey.converterVersion] = converterVersion }
        if let modelKind { m[ModelMetadataKey.modelKind] = modelKind }
        return m
    }
}
