#if canImport(Glibc)
import Glibc
#endif

/// Hands pages that malloc holds free back to the system. Planning builds and drops large
/// temporary arrays (weights re-laid out, transformed, packed); glibc raises its mmap threshold
/// after the first large free, so later ones come from the heap, and it keeps up to twice that
/// threshold free at the heap's top and any free pages below it.
public enum HeapTrim {
    public static func releaseFreePages() {
        #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        if let trim = mallocTrim { _ = unsafeBitCast(trim, to: MallocTrim.self)(0) }
        #endif
    }

    /// Serves every allocation of at least `bytes` from its own mapping, returned to the system
    /// when freed. glibc otherwise raises this bound to the largest block freed so far (up to
    /// 32 MB) and then keeps up to twice that free in its heap: after loading, the 12.6 MB
    /// images of every swap came from the heap, and the fp32 `megafs swap --pairs` peaked 11.5 MB
    /// higher (1494 against 1482 MB, 2026-12-01). Call before other threads exist.
    public static func fixMmapThreshold(bytes: Int = 1 << 20) {
        #if canImport(Glibc)
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        let mmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD
        if let mallopt = dlsym(nil, "mallopt") { _ = unsafeBitCast(mallopt, to: MallOpt.self)(mmapThreshold, Int32(bytes)) }
        #endif
    }

    #if canImport(Glibc)
    // Not in Swift's Glibc module (malloc.h).
    private nonisolated(unsafe) static let mallocTrim = dlsym(nil /* RTLD_DEFAULT */, "malloc_trim")
    #endif
}
