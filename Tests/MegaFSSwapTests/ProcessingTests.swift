import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSSwap

@Suite struct ResizeTests {
    @Test func upsampleTwoByTwoByHand() throws {
        // [[0,4],[8,12]] -> 4x4. Per axis (in 2, out 4): src = (d+0.5)*0.5-0.5 = -0.25, 0.25,
        // 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1, so out[y][x] = 8*f[y] + 4*f[x].
        let img = try FloatImage(width: 2, height: 2, channels: 1, values: [0, 4, 8, 12])
        let out = Resize.bilinear(img, width: 4, height: 4)
        let f: [Float] = [0, 0.25, 0.75, 1]
        for y in 0..<4 { for x in 0..<4 { #expect(out[x, y] == 8 * f[y] + 4 * f[x]) } }
    }

    @Test func downsampleAveragesPairsAndNonSquare() throws {
        // in 4 -> out 2: src = (d+0.5)*2-0.5 = 0.5, 2.5: the mean of pixels (0,1) and (2,3).
        // Rows: 3 -> 1: src = 0.5*3-0.5 = 1: the middle row.
        let v: [Float] = [1, 3, 5, 9, 10, 20, 30, 40, 7, 7, 7, 7]
        let img = try FloatImage(width: 4, height: 3, channels: 1, values: v)
        let out = Resize.bilinear(img, width: 2, height: 1)
        #expect(out.values == [15, 35])
        // 3 -> 5 along x (1 row): ratio 0.6, src = -0.2, 0.4, 1.0, 1.6, 2.2 -> 0, .4, 1, 1.6, 2
        let row = try FloatImage(width: 3, height: 1, channels: 1, values: [0, 10, 30])
        let up = Resize.bilinear(row, width: 5, height: 1)
        let expected: [Float] = [0, 4, 10, 22, 30]
        #expect(maxAbsDiff(up.values, expected) < 1e-5)
    }

    @Test func channelsAreIndependentAndSameSizeCopies() throws {
        var img = RGBImage(width: 2, height: 1)
        img[0, 0] = (0, 100, 200); img[1, 0] = (255, 100, 0)
        let up = Resize.bilinear(img, width: 4, height: 1)
        // f = 0, .25, .75, 1
        #expect(up.values == [0, 100, 200, 63.75, 100, 150, 191.25, 100, 50, 255, 100, 0])
        #expect(Resize.bilinear(img, width: 2, height: 1).values == img.pixels.map(Float.init))
        #expect(Resize.bilinearRGB(img, width: 4, height: 1).pixels == [0, 100, 200, 64, 100, 150, 191, 100, 50, 255, 100, 0])
    }

    @Test func matchesReferenceTargetResize() throws {
        guard let fx = ChainFixture.load(), let tgt = fx.tensor("target_image"),
              let golden = fx.tensor("target_resized"), let g = fx.generatorSize else { return }
        let image = try RGBImage(width: tgt.shape[1], height: tgt.shape[0], pixels: tgt.elements(as: UInt8.self))
        let out = Resize.bilinear(image, width: g, height: g)
        #expect(maxAbsDiff(out.values, golden.floats) <= 1e-5)
    }
}

@Suite struct PreprocessTests {
    @Test func normalisesToMinusOneOne() throws {
        var img = RGBImage(width: 2, height: 2)
        img[0, 0] = (0, 255, 51); img[1, 0] = (255, 0, 102); img[0, 1] = (128, 128, 128); img[1, 1] = (0, 0, 0)
        let t = Preprocess.tensor(img, size: 2)
        #expect(t.shape == [1, 3, 2, 2])
        let v = t.floats
        // NCHW: channel R = [0,255,128,0] -> [-1, 1, 128/127.5-1, -1]
        #expect(v[0] == -1 && v[1] == 1 && abs(v[2] - Float(128.0 / 127.5 - 1)) < 1e-7 && v[3] == -1)
        #expect(v[4] == 1 && v[5] == -1)                      // G
        #expect(abs(v[8] - Float(51.0 / 127.5 - 1)) < 1e-7)   // B
    }

    @Test func resizesTo256() throws {
        let img = gradientImage(width: 512, height: 300)
        let t = Preprocess.batch([img, img], size: 256)
        #expect(t.shape == [2, 3, 256, 256])
        let v = t.floats
        #expect(v.allSatisfy { $0 >= -1 && $0 <= 1 })
        #expect(Array(v[0..<(3 * 65536)]) == Array(v[(3 * 65536)...]))
        // matches resize-then-normalise computed separately
        let r = Resize.bilinear(img, width: 256, height: 256)
        #expect(abs(v[65536 + 256 * 7 + 9] - (r[9, 7, 1] / 255 - 0.5) / 0.5) < 1e-5)
    }

    @Test func matchesReferenceEncoderInput() throws {
        guard let fx = ChainFixture.load(), let x = fx.tensor("encoder_input"),
              let src = fx.tensor("source_image"), let tgt = fx.tensor("target_image") else { return }
        func image(_ t: Tensor) throws -> RGBImage {
            try RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.elements(as: UInt8.self))
        }
        let batch = Preprocess.batch([try image(tgt), try image(src)])
        #expect(batch.shape == x.shape)
        #expect(maxAbsDiff(batch.floats, x.floats) <= 1e-6)
        // and the sample PNGs decode to the same pixels the reference used
        let samples = swapRepoRoot + "/examples/samples/"
        #expect(try ImageIO.read(path: samples + "astronaut_face.png") == image(tgt))
        #expect(try ImageIO.read(path: samples + "synthetic_face.png") == image(src))
    }
}

@Suite struct MaskTests {
    @Test func kernelByHand() {
        let k = FaceMask.softErosionKernel(size: 17)
        #expect(k.count == 289)
        var sum = 0.0
        for v in k { sum += Double(v) }
        #expect(abs(sum - 1) < 1e-6)
        // independent computation in Double
        let top = (128.0).squareRoot()
        var s = 0.0
        for y in 0..<17 { for x in 0..<17 { s += top - Double((x - 8) * (x - 8) + (y - 8) * (y - 8)).squareRoot() } }
        #expect(abs(Double(k[8 * 17 + 8]) - top / s) < 1e-8)            // centre: max(dist) / S
        #expect(abs(Double(k[8 * 17 + 11]) - (top - 3) / s) < 1e-8)      // dist 3
        #expect(abs(Double(k[5 * 17 + 12]) - (top - 5) / s) < 1e-8)      // (dx 4, dy -3): dist 5
        #expect(k[0] == 0 && k[16] == 0 && k[288] == 0)                 // corners: dist == max
        for y in 0..<17 { for x in 0..<17 {
            #expect(k[y * 17 + x] == k[(16 - y) * 17 + x] && k[y * 17 + x] == k[x * 17 + y])
        } }
    }

    /// Direct, obviously-correct zero-padded cross-correlation.
    func naiveConv(_ m: [Float], w: Int, h: Int, k: [Float], s: Int) -> [Float] {
        let r = s / 2
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w {
            var acc = 0.0
            for ky in 0..<s { for kx in 0..<s {
                let iy = y + ky - r, ix = x + kx - r
                if iy >= 0, iy < h, ix >= 0, ix < w { acc += Double(k[ky * s + kx]) * Double(m[iy * w + ix]) }
            } }
            out[y * w + x] = Float(acc)
        } }
        return out
    }

    @Test func fastConvolutionMatchesNaive() {
        var rng = SeededRNG(seed: 3)
        let w = 53, h = 41
        // random values inside a blob, zeros elsewhere (exercises the skipping)
        var m = [Float](repeating: 0, count: w * h)
        for y in 10..<30 { for x in 5..<40 where Bool.random(using: &rng) || (x + y) % 3 == 0 { m[y * w + x] = Float.random(in: 0...1, using: &rng) } }
        m[0] = 1; m[w * h - 1] = 0.5   // corners
        let k = FaceMask.softErosionKernel()
        for threads in [1, 3] {
            let fast = FaceMask.Convolver(width: w, height: h, kernel: k, size: 17, threads: threads).apply(m)
            #expect(maxAbsDiff(fast, naiveConv(m, w: w, h: h, k: k, s: 17)) < 1e-6)
        }
        // a non-symmetric kernel takes the general path
        let k5: [Float] = (0..<25).map { Float($0) / 300 }
        let c = FaceMask.Convolver(width: w, height: h, kernel: k5, size: 5, threads: 2)
        #expect(!c.symmetric)
        #expect(maxAbsDiff(c.apply(m), naiveConv(m, w: w, h: h, k: k5, s: 5)) < 1e-6)
        // symmetric 3x3 kernel, odd shapes (1x1, a single row, a column)
        let k3: [Float] = [1, 2, 1, 2, 4, 2, 1, 2, 1].map { $0 / 16 }
        for (ww, hh) in [(1, 1), (70, 1), (1, 9), (33, 5)] {
            let v: [Float] = (0..<(ww * hh)).map { Float(($0 * 37) % 11) / 10 }
            for (kk, ss) in [(k3, 3), (k, 17)] {
                let cc = FaceMask.Convolver(width: ww, height: hh, kernel: kk, size: ss, threads: 2)
                #expect(cc.symmetric)
                #expect(maxAbsDiff(cc.apply(v), naiveConv(v, w: ww, h: hh, k: kk, s: ss)) < 1e-6, "\(ww)x\(hh) k\(ss)")
            }
        }
    }

    @Test func erosionKeepsInteriorAndClearsFarOutside() throws {
        // a 200x200 square of ones in a 300x300 zero frame
        var m = FloatImage(width: 300, height: 300, channels: 1, repeating: 0)
        for y in 50..<250 { for x in 50..<250 { m[x, y] = 1 } }
        let out = FaceMask.softErode(m)
        // deep inside (further than 7 iterations x 8 px from the edge): 1
        for y in 110..<190 { for x in 110..<190 { #expect(out[x, y] == 1) } }
        // far outside: 0
        #expect(out[5, 5] == 0 && out[295, 150] == 0 && out[150, 20] == 0)
        // values in [0,1] and monotone across the edge along the middle row
        #expect(out.values.allSatisfy { $0 >= 0 && $0 <= 1 })
        for x in 30..<150 { #expect(out[x + 1, 150] >= out[x, 150]) }
        // the blend region is softened: some values strictly between 0 and 1
        #expect(out.values.contains { $0 > 0.05 && $0 < 0.95 })
        // a soft value below the threshold is normalised: the largest below-threshold value is 1
        // after division, so some value < 1 is close to 1 -- and none equals exactly 0.9..1 range gap
        let belowOne = out.values.filter { $0 < 1 }
        #expect(abs(belowOne.max()! - 1) < 1e-6 || belowOne.max()! == 1)
    }

    @Test func erosionEdgeCases() {
        // empty mask: stays 0 (no NaN)
        let zero = FaceMask.softErode(FloatImage(width: 40, height: 30, channels: 1, repeating: 0))
        #expect(zero.values.allSatisfy { $0 == 0 })
        // nothing below the threshold: all ones
        let all = FaceMask.softErode(FloatImage(width: 20, height: 20, channels: 1, repeating: 0),
                                     FaceMask.SoftErosion(threshold: 0))
        #expect(all.values.allSatisfy { $0 == 1 })
        // one iteration = one conv + threshold
        var one = FloatImage(width: 9, height: 9, channels: 1, repeating: 0)
        one[4, 4] = 1
        let p = FaceMask.softErode(one, FaceMask.SoftErosion(iterations: 1))
        // the conv of a single 1 is the kernel itself around it; max (centre) becomes 1 after division
        let k = FaceMask.softErosionKernel()
        #expect(p[4, 4] == 1)
        #expect(abs(p[5, 4] - k[8 * 17 + 9] / k[8 * 17 + 8]) < 1e-6)
    }

    @Test func faceMapFromLabelsByHand() throws {
        // 2x2 labels: skin, mouth / hair, background -> same-size m0 = [1, 1, 0, 0]
        let labels = try LabelMap(width: 2, height: 2, labels: [1, 11, 17, 0])
        #expect(FaceMask.faceMap(labels, width: 2, height: 2).values == [1, 1, 0, 0])
        // every face id counts, neck/ears/hair do not
        let all = try LabelMap(width: 19, height: 1, labels: (0...18).map { UInt8($0) })
        let m = FaceMask.faceMap(all, width: 19, height: 1).values
        let expected: [Float] = (0...18).map { [1, 2, 3, 4, 5, 6, 10, 11, 12, 13].contains($0) ? 1 : 0 }
        #expect(m == expected)
        // upsampled: half-pixel bilinear of the 0/1 map
        let up = FaceMask.faceMap(labels, width: 4, height: 4)
        #expect(up[0, 0] == 1 && up[3, 3] == 0)
        #expect(up[0, 1] == 0.75 && up[0, 2] == 0.25)
    }

    @Test func defaultEllipseMask() {
        let hard = FaceMask.ellipseMap(width: 100, height: 100)
        #expect(hard[50, 56] == 1 && hard[2, 2] == 0 && hard[50, 10] == 0)
        let soft = FaceMask.defaultMask(width: 256, height: 256)
        #expect(soft[128, 143] == 1 && soft[3, 3] == 0)
        #expect(soft.values.contains { $0 > 0.1 && $0 < 0.9 })
    }

    @Test func matchesReferenceMasks() throws {
        guard let fx = ChainFixture.load() else { return }
        let labels = try LabelMap.read(path: swapRepoRoot + "/examples/samples/astronaut_face_labels.png")
        if let l = fx.tensor("target_labels") { #expect(labels.labels == l.elements(as: UInt8.self)) }
        for (m0Key, maskKey) in [("mask_m0", "mask"), ("mask_m0_128", "mask_128")] {
            guard let m0 = fx.tensor(m0Key), let mask = fx.tensor(maskKey) else { continue }
            let size = m0.shape[0]
            let ours0 = FaceMask.faceMap(labels, width: size, height: size)
            #expect(maxAbsDiff(ours0.values, m0.floats) <= 1e-6, "\(m0Key)")
            // erosion from the reference m0 (isolates the erosion) and end to end
            let fromRef = FaceMask.softErode(try FloatImage(width: size, height: size, channels: 1, values: m0.floats))
            #expect(maxAbsDiff(fromRef.values, mask.floats) <= 5e-6, "\(maskKey)")
            let ours = FaceMask.fromLabels(labels, width: size, height: size)
            #expect(maxAbsDiff(ours.values, mask.floats) <= 5e-6, "\(maskKey) from labels")
        }
    }

    @Test func speedAt1024() throws {
        let labels = try LabelMap.read(path: swapRepoRoot + "/examples/samples/astronaut_face_labels.png")
        let m0 = FaceMask.faceMap(labels, width: 1024, height: 1024)
        _ = FaceMask.softErode(m0)   // warm up
        let full = FloatImage(width: 1024, height: 1024, channels: 1, repeating: 0.5)
        var times: [String: Double] = [:]
        var report: [String] = []
        for (name, m) in [("face", m0), ("dense", full)] {
            let t0 = DispatchTime.now().uptimeNanoseconds, c0 = processCPUNanoseconds()
            let out = FaceMask.softErode(m)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            let cpu = Double(processCPUNanoseconds() - c0) / 1e6
            times[name] = ms
            report.append("\(name) \(String(format: "%.1f", ms)) ms wall, \(String(format: "%.1f", cpu)) ms CPU")
            #expect(out.width == 1024 && out.values.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        print("SoftErosion 1024x1024, 7 iterations, \(ProcessInfo.processInfo.activeProcessorCount) threads: " + report.joined(separator: "; "))
        #expect(times["dense"]! < 10_000)
    }
}

@Suite struct LabelMapTests {
    @Test func roundTripAndValidation() throws {
        let labels = try LabelMap(width: 5, height: 4, labels: (0..<20).map { UInt8($0 % 19) })
        let png = try labels.encodePNG()
        #expect(try LabelMap.decode(png) == labels)
        // a value above 18
        let bad = try ImageIO.encodeGrayPNG([0, 1, 19, 2], width: 2, height: 2)
        do { _ = try LabelMap.decode(bad, name: "bad.png"); Issue.record("no error") } catch let e as ImageError {
            guard case .invalidLabelMap(let f, let r) = e else { Issue.record("\(e)"); return }
            #expect(f == "bad.png" && r.contains("19"))
        }
        // RGB with equal channels: accepted; unequal: rejected
        let rgbEqual = try PNGWriter.encode([3, 3, 3, 11, 11, 11], width: 2, height: 1, channels: 3)
        #expect(try LabelMap.decode(rgbEqual).labels == [3, 11])
        let rgbColour = try PNGWriter.encode([3, 3, 3, 200, 10, 11], width: 2, height: 1, channels: 3)
        #expect(throws: ImageError.self) { try LabelMap.decode(rgbColour) }
        // grey+alpha, JPEG, empty, garbage
        #expect(throws: ImageError.self) { try LabelMap.decode(try PNGWriter.encode([1, 255], width: 1, height: 1, channels: 2)) }
        let jpeg = try ImageIO.encodeJPEG(gradientImage(width: 8, height: 8))
        do { _ = try LabelMap.decode(jpeg, name: "l.jpg"); Issue.record("no error") } catch let e as ImageError {
            guard case .invalidLabelMap = e else { Issue.record("\(e)"); return }
            #expect(e.description.contains("l.jpg"))
        }
        #expect(throws: ImageError.empty(file: "<memory>")) { try LabelMap.decode([]) }
        #expect(throws: ImageError.unknownFormat(file: "<memory>")) { try LabelMap.decode([1, 2, 3, 4, 5, 6, 7, 8, 9]) }
    }

    @Test func rejectsAGammaThatWouldRescale() throws {
        var png = pngRemovingChunks(try ImageIO.encodeGrayPNG([0, 1, 2, 3], width: 2, height: 2), types: ["sRGB", "gAMA", "cHRM", "iCCP"])
        #expect(try LabelMap.decode(png).labels == [0, 1, 2, 3])
        // insert a gAMA chunk of 1.0 (100000) after IHDR (8 + 25 bytes); CRC left zero
        let chunk: [UInt8] = [0, 0, 0, 4] + Array("gAMA".utf8) + [0, 1, 0x86, 0xA0] + [0, 0, 0, 0]
        png.insert(contentsOf: chunk, at: 33)
        do { _ = try LabelMap.decode(png, name: "g.png"); Issue.record("no error") } catch let e as ImageError {
            guard case .invalidLabelMap(_, let r) = e else { Issue.record("\(e)"); return }
            #expect(r.contains("gAMA"))
        }
    }
}

@Suite struct PostprocessTests {
    @Test func denormRangeIsExactly0To255() throws {
        var rng = SeededRNG(seed: 11)
        let v = (0..<(3 * 8 * 6)).map { _ in Float.random(in: -1.3...0.9, using: &rng) }
        let out = try Postprocess.denormalize(Tensor(v, shape: [1, 3, 8, 6]))
        #expect(out.width == 6 && out.height == 8 && out.channels == 3)
        #expect(out.values.min() == 0 && out.values.max() == 255)
        // HWC order and the formula
        let lo = v.min()!, hi = v.max()!
        #expect(out[5, 7, 2] == (v[2 * 48 + 7 * 6 + 5] - lo) / (hi - lo) * 255)
        #expect(throws: ImageError.self) { try Postprocess.denormalize(Tensor([Float](repeating: 0.3, count: 12), shape: [1, 3, 2, 2])) }
        #expect(throws: ImageError.self) { try Postprocess.denormalize(Tensor([Float](repeating: 0.3, count: 8), shape: [1, 2, 2, 2])) }
        #expect(throws: ImageError.self) { try Postprocess.denormalize(Tensor([.nan] + [Float](repeating: 0.3, count: 11), shape: [3, 2, 2])) }
    }

    @Test func blendAndRounding() throws {
        let s = try FloatImage(width: 2, height: 1, channels: 3, values: [200, 200, 200, 10, 20, 30])
        let t = try FloatImage(width: 2, height: 1, channels: 3, values: [0, 100, 50, 110, 120, 130])
        let m = try FloatImage(width: 2, height: 1, channels: 1, values: [1, 0.25])
        let b = try Postprocess.blend(swapped: s, target: t, mask: m)
        #expect(b.values == [200, 200, 200, 85, 95, 105])
        #expect(throws: ImageError.self) { try Postprocess.blend(swapped: s, target: t, mask: FloatImage(width: 1, height: 1, channels: 1, repeating: 1)) }
        let r = try FloatImage(width: 2, height: 1, channels: 3, values: [2.5, 3.5, -3, 300, 254.7, .nan])
        #expect(try Postprocess.toRGB8(r).pixels == [2, 4, 0, 255, 255, 0])
        #expect(try Postprocess.toRGB8(r, rounding: .truncate).pixels == [2, 3, 0, 255, 254, 0])
        // An image large enough to be split over the threads: every value as its own rule says.
        let side = 640
        let values = (0..<(side * side * 3)).map { i -> Float in i % 997 == 0 ? .nan : Float(i % 613) * 0.5 - 20.25 }
        let big = try FloatImage(width: side, height: side, channels: 3, values: values)
        #expect(try Postprocess.toRGB8(big).pixels == values.map { $0.isNaN ? 0 : UInt8(min(max($0.rounded(.toNearestOrEven), 0), 255)) })
        #expect(try Postprocess.toRGB8(big, rounding: .truncate).pixels
                == values.map { $0.isNaN ? 0 : UInt8(min(max($0, 0), 255).rounded(.towardZero)) })
    }

    @Test func compositeAtTargetSize() throws {
        let values: [Float] = (0..<(3 * 16 * 16)).map { (i: Int) -> Float in Float(i % 37) / 18 - 1 }
        let gen = Tensor(values, shape: [1, 3, 16, 16])
        let target = gradientImage(width: 24, height: 12)
        let mask = FaceMask.defaultMask(width: 16, height: 16)
        let c = try Postprocess.composite(generated: gen, target: target, mask: mask)
        #expect(c.image.width == 24 && c.image.height == 12)
        #expect(c.blended.width == 16)
        let g = try Postprocess.composite(generated: gen, target: target, mask: mask, outputSize: .generator)
        #expect(g.image.width == 16 && g.image.height == 16)
        // mask 0 everywhere: the delivered image is the target resized there and back
        let none = try Postprocess.composite(generated: gen, target: gradientImage(width: 16, height: 16),
                                             mask: FloatImage(width: 16, height: 16, channels: 1, repeating: 0))
        #expect(none.image == gradientImage(width: 16, height: 16))
        #expect(throws: ImageError.self) { try Postprocess.composite(generated: gen, target: target, mask: FaceMask.defaultMask(width: 8, height: 8)) }
    }

    @Test func matchesReferenceChain() throws {
        guard let fx = ChainFixture.load(), let gen = fx.tensor("generated"), let den = fx.tensor("generated_denorm"),
              let mask = fx.tensor("mask"), let blended = fx.tensor("blended"), let u8 = fx.tensor("blended_u8"),
              let tgt = fx.tensor("target_image") else { return }
        let ours = try Postprocess.denormalize(gen)
        #expect(ours.hwcShape == den.shape)
        #expect(maxAbsDiff(ours.values, den.floats) <= 1e-5)
        let g = gen.shape[3]
        let target = try RGBImage(width: tgt.shape[1], height: tgt.shape[0], pixels: tgt.elements(as: UInt8.self))
        let m = try FloatImage(width: g, height: g, channels: 1, values: mask.floats)
        let c = try Postprocess.composite(generated: gen, target: target, mask: m, outputSize: .generator)
        #expect(maxAbsDiff(c.blended.values, blended.floats) <= 1e-3)
        let ref = u8.elements(as: UInt8.self)
        var off = 0
        for i in 0..<ref.count where ref[i] != c.image.pixels[i] {
            off += 1
            #expect(abs(Int(ref[i]) - Int(c.image.pixels[i])) <= 1)
        }
        #expect(off <= 2, "\(off) bytes differ from blended_u8")
        // our own mask from the label PNG, end to end
        let labels = try LabelMap.read(path: swapRepoRoot + "/examples/samples/astronaut_face_labels.png")
        let full = try Postprocess.composite(generated: gen, target: target, mask: FaceMask.fromLabels(labels, width: g, height: g),
                                             outputSize: .generator)
        #expect(maxAbsDiff(full.blended.values, blended.floats) <= 2e-3)
        #expect(full.image.pixels == ref)
    }
}

@Suite struct GridTests {
    @Test func sideBySideAtCommonHeight() throws {
        let a = RGBImage(width: 10, height: 10, fill: (255, 0, 0))
        let b = RGBImage(width: 40, height: 20, fill: (0, 255, 0))
        let c = RGBImage(width: 20, height: 20, fill: (0, 0, 255))
        let grid = try Grid.sideBySide([a, b, c], gap: 2)
        // height 20: a -> 20x20, b stays 40x20, c 20x20; 20+2+40+2+20
        #expect(grid.height == 20 && grid.width == 84)
        #expect(grid[0, 0] == (255, 0, 0) && grid[19, 19] == (255, 0, 0))
        #expect(grid[20, 5] == (255, 255, 255) && grid[21, 5] == (255, 255, 255))
        #expect(grid[22, 0] == (0, 255, 0) && grid[61, 19] == (0, 255, 0))
        #expect(grid[64, 10] == (0, 0, 255) && grid[83, 19] == (0, 0, 255))
        let small = try Grid.sideBySide([a, b], height: 5, gap: 0)
        #expect(small.height == 5 && small.width == 5 + 10)
        #expect(throws: ImageError.self) { try Grid.sideBySide([]) }
    }
}

@Suite struct SwapGridTests {
    @Test func swapGrid() throws {
        let s = RGBImage(width: 256, height: 256, fill: (1, 1, 1))
        let o = RGBImage(width: 64, height: 64, fill: (2, 2, 2))
        let g = try Grid.swap(source: s, target: s, swapped: o, refined: o)
        #expect(g.height == 64 && g.width == 4 * 64 + 3 * 8)
        #expect(g[0, 0] == (1, 1, 1) && g[72, 0] == (1, 1, 1) && g[144, 63] == (2, 2, 2) && g[275, 10] == (2, 2, 2) && g[220, 10] == (2, 2, 2))
        #expect(g[66, 10] == (255, 255, 255))
    }
}
