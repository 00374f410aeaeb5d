// JPEG and PNG decoding as `megafs swap` and `megafs serve` call it (`ImageIO.decode` on the
// file's or the upload's bytes), with a pixel limit of 512 x 512 so that iterations stay fast
// (the limit itself is checked from the header, before decoding).
import MegaFSSwap

let fuzzImageOptions = ImageDecodeOptions(maxPixels: 512 * 512)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let image = try? ImageIO.decode(bytes, name: "fuzz", options: fuzzImageOptions) else { return 0 }
    // A decoded image must be what it claims: width x height RGB pixels within the limit.
    precondition(image.width >= 1 && image.height >= 1 && image.width * image.height <= fuzzImageOptions.maxPixels)
    precondition(image.pixels.count == image.width * image.height * 3)
    return 0
}
