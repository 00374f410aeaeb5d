// MegaFSSwap: the image half of `megafs swap`.
//
// - `ImageIO`: PNG (libpng simplified API) and JPEG (TurboJPEG) decode/encode, EXIF orientation,
//   pixel limit checked from the header before decoding, `ImageError` for every failure.
// - `LabelMap.read`: face-parsing label maps (8-bit greyscale PNG, CelebAMask-HQ labels 0...18).
// - `Resize`: half-pixel bilinear (PyTorch align_corners=False / OpenCV INTER_LINEAR on floats).
// - `Preprocess`: resize to 256, /255, (x-0.5)/0.5, NCHW float32 `Tensor`.
// - `FaceMask`: m0 from labels, SoftErosion(17, 0.9, 7), default ellipse mask.
// - `Postprocess`: min-max denormalisation, blend, rounding to 8 bits, `composite`.
// - `Grid`: side-by-side comparison images.
// - `SwapPipeline` + `SwapNetworks`: the swap end to end over any network back end;
//   `SessionSwapNetworks` runs it on three runtime `InferenceSession`s.
//
// Reference for the numerics: examples/export/megafs_pipeline.py and fixtures/chain/.
