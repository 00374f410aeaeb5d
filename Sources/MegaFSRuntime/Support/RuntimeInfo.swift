import CKernels

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
