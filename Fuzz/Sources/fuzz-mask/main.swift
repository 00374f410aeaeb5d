// The face-parsing label-map reader (`LabelMap.decode`: 8-bit greyscale or equal-channel RGB
// PNG, labels 0...18), with the same 512 x 512 pixel limit as fuzz-image.
import MegaFSSwap

let fuzzMaskOptions = ImageDecodeOptions(maxPixels: 512 * 512)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMask(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let map = try? LabelMap.decode(bytes, name: "fuzz", options: fuzzMaskOptions) else { return 0 }
    precondition(map.width >= 1 && map.height >= 1 && map.width * map.height <= fuzzMaskOptions.maxPixels)
    precondition(map.labels.count == map.width * map.height && map.labels.allSatisfy { $0 <= 18 })
    return 0
}
