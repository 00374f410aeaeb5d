import Foundation
import MegaFSGraph

/// Pictures of how far a candidate's output is from a reference's, for `megafs validate --report`.
public enum DriftPicture {
    /// An RGB image of a (1, 3, H, W) tensor in [-1, 1] (clamped).
    public static func image(_ t: Tensor, sample: Int = 0) throws -> RGBImage {
        guard t.shape.count == 4, t.shape[1] == 3, sample < t.shape[0] else {
            throw ImageError.invalidArgument("not an image tensor: shape \(t.shape)")
        }
        let h = t.shape[2], w = t.shape[3], plane = h * w
        let v = t.floats
        var px = [UInt8](repeating: 0, count: plane * 3)
        let base = sample * 3 * plane
        for i in 0..<plane {
            for c in 0..<3 {
                let x = (v[base + c * plane + i] + 1) * 127.5
                px[i * 3 + c] = UInt8(max(0, min(255, x.rounded())))
            }
        }
        return try RGBImage(width: w, height: h, pixels: px)
    }

    /// A heat map of |candidate − reference| (max over channels), amplified by `gain` (in units
    /// of the [-1, 1] range: gain 10 shows an error of 0.1 at full brightness): black, red,
    /// yellow, white.
    public static func differenceHeatMap(reference: Tensor, candidate: Tensor, gain: Float, sample: Int = 0) throws -> RGBImage {
        guard reference.shape == candidate.shape, reference.shape.count == 4, reference.shape[1] == 3 else {
            throw ImageError.invalidArgument("heat map of tensors of shapes \(reference.shape) and \(candidate.shape)")
        }
        let h = reference.shape[2], w = reference.shape[3], plane = h * w
        let r = reference.floats, c = candidate.floats
        var px = [UInt8](repeating: 0, count: plane * 3)
        let base = sample * 3 * plane
        for i in 0..<plane {
            var d: Float = 0
            for ch in 0..<3 { d = max(d, abs(c[base + ch * plane + i] - r[base + ch * plane + i])) }
            let x = min(1, d * gain / 2) * 3   // 0...3 through black -> red -> yellow -> white
            px[i * 3] = UInt8(min(1, x) * 255)
            px[i * 3 + 1] = UInt8(max(0, min(1, x - 1)) * 255)
            px[i * 3 + 2] = UInt8(max(0, min(1, x - 2)) * 255)
        }
        return try RGBImage(width: w, height: h, pixels: px)
    }

    /// reference | candidate | heat map, side by side with a small gap.
    public static func comparison(reference: Tensor, candidate: Tensor, gain: Float) throws -> RGBImage {
        let a = try image(reference), b = try image(candidate)
        let d = try differenceHeatMap(reference: reference, candidate: candidate, gain: gain)
        let gap = max(2, a.width / 64)
        var out = RGBImage(width: a.width * 3 + gap * 2, height: a.height, fill: (255, 255, 255))
        for (k, img) in [a, b, d].enumerated() {
            let x0 = k * (a.width + gap)
            for y in 0..<img.height {
                let src = y * img.width * 3, dst = (y * out.width + x0) * 3
                out.pixels.replaceSubrange(dst..<(dst + img.width * 3), with: img.pixels[src..<(src + img.width * 3)])
            }
        }
        return out
    }

    /// `text` with &, < and > escaped for HTML or SVG.
    public static func escapeMarkup(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A horizontal bar chart as SVG: one bar per (label, value), longest first as given, with
    /// the value printed; `logScale` for values spanning decades.
    public static func barChartSVG(title: String, bars: [(label: String, value: Double)], logScale: Bool = true) -> String {
        let rowHeight = 18, labelWidth = 420, chartWidth = 360, top = 40
        let height = top + rowHeight * bars.count + 20
        let positive = bars.map(\.value).filter { $0 > 0 }
        let maxV = positive.max() ?? 1, minV = positive.min() ?? 1
        let lo = logScale ? log10(max(minV, maxV * 1e-8)) - 0.5 : 0
        let hi = logScale ? log10(maxV) : maxV
        func length(_ v: Double) -> Double {
            guard v > 0 else { return 0 }
            let x = logScale ? (log10(v) - lo) / max(1e-12, hi - lo) : v / max(1e-300, hi)
            return max(1, min(1, x) * Double(chartWidth))
        }
        let esc = escapeMarkup
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(labelWidth + chartWidth + 110)" height="\(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="8" y="22" font-size="15" font-weight="bold">\(esc(title))</text>

        """
        for (i, bar) in bars.enumerated() {
            let y = top + i * rowHeight
            let label = bar.label.count > 64 ? "…" + bar.label.suffix(63) : bar.label
            svg += """
            <text x="\(labelWidth - 6)" y="\(y + 13)" text-anchor="end">\(esc(String(label)))</text>
            <rect x="\(labelWidth)" y="\(y + 3)" width="\(String(format: "%.1f", length(bar.value)))" height="\(rowHeight - 6)" fill="#c0392b"/>
            <text x="\(labelWidth + Int(length(bar.value)) + 6)" y="\(y + 13)">\(String(format: "%.3g", bar.value))</text>

            """
        }
        svg += "</svg>\n"
        return svg
    }
}
