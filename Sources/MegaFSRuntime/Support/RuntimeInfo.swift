import CKernels
import Foundation

/// What the runtime found about the machine: CPU features (CPUID) and the BLAS in use.
public enum RuntimeInfo {
    public static var cpuFeatures: [String] {
        let f = mfs_detect_cpu()
        var names: [String] = []
        if f.avx2 != 0 { names.append("avx2") }
        if f.fma != 0 { names.append("fma") }
        if f.avx512f != 0 { names.append("avx512f") }
        if f.avx512bw != 0 { names.append("avx512bw") }
        if f.avx512vnni != 0 { names.append("avx512vnni") }
        if f.avx512bf16 != 0 { names.append("avx512bf16") }
        return names
    }

    /// One line for profiles: "cpu avx2 fma avx512f ...; openblas <config> core=<name>".
    public static var summary: String {
        "cpu \(cpuFeatures.joined(separator: " ")); openblas \(OpenBLASGemm.configuration)"
    }
}

/// The machine's nominal float32 peak, for profiles' "% of peak": clock x vector lanes x 2
/// flops per FMA x 2 FMA units per core x threads. The clock is /proc/cpuinfo's "cpu MHz"
/// (a VM reports the nominal one; turbo may be higher); lanes are those of the widest vectors
/// the CPU has (16 with AVX-512, 8 with AVX2), whether or not a kernel uses them.
public struct MachinePeak: Sendable {
    public var gflopsPerSecond: Double
    public var assumption: String

    public static func current(threads: Int) -> MachinePeak? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu MHz") }),
              let value = line.split(separator: ":").last.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }),
              value > 0 else { return nil }
        let features = Set(RuntimeInfo.cpuFeatures)
        let (lanes, isa) = features.contains("avx512f") ? (16.0, "AVX-512") : features.contains("avx2") ? (8.0, "AVX2") : (4.0, "SSE")
        let gflops = value / 1000 * lanes * 2 * 2 * Double(threads)
        return MachinePeak(gflopsPerSecond: gflops,
                           assumption: String(format: "%.0f MHz (cpuinfo) x %.0f fp32 lanes (%@) x 2 flops per FMA x 2 FMA units x %d thread%@",
                                              value, lanes, isa, threads, threads == 1 ? "" : "s"))
    }
}
