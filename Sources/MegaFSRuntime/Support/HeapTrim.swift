#if canImport(Glibc)
import Glibc
#endif

/// Hands pages that malloc holds free back to the system. Planning builds and drops large
/// temporary arrays (weights re-laid out, transformed, packed); glibc raises its mmap threshold
/// after the first large free, so later ones come from the heap, and it keeps up to twice that
/// threshold free at the heap's top and any free pages below it.
enum HeapTrim {
    static func releaseFreePages() {
        #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        if let trim = mallocTrim { _ = unsafeBitCast(trim, to: MallocTrim.self)(0) }
        #endif
    }

    #if canImport(Glibc)
    // Not in Swift's Glibc module (malloc.h).
    private nonisolated(unsafe) static let mallocTrim = dlsym(nil /* RTLD_DEFAULT */, "malloc_trim")
    #endif
}
