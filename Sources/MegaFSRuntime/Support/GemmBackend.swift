import CKernels
import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Single-precision matrix products, row-major, as the kernels call them.
///
/// The runtime reaches every GEMM through this protocol, so another implementation (our own
/// AVX-512 kernels, a reference loop for tests) can replace OpenBLAS per session.
public protocol GemmBackend: Sendable {
    var name: String { get }
    /// C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major with leading dimensions.
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)
    /// y[m] = alpha * op(A) x + beta * y, A row-major [rows, cols] with leading dimension lda;
    /// m = rows when not transposed, cols when transposed.
    func sgemv(transA: Bool, rows: Int, cols: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>)
    /// Asks the backend to use this many threads for the calls that follow.
    func setThreads(_ count: Int)
}

extension GemmBackend {
    public func sgemv(transA: Bool, rows: Int, cols: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        // y^T = x^T op(A)^T: a 1-row GEMM.
        let m = transA ? cols : rows
        let k = transA ? rows : cols
        sgemm(transA: false, transB: !transA, m: 1, n: m, k: k, alpha: alpha, a: x, lda: k,
              b: a, ldb: lda, beta: beta, c: y, ldc: m)
    }
    public func setThreads(_ count: Int) {}
}

/// OpenBLAS (Debian's pthread build) through CBLAS.
public struct OpenBLASGemm: GemmBackend {
    /// Every GEMM goes through an instance, so this runs before the first one.
    public init() { _ = Self.quietWorkers }
    public var name: String { "openblas" }

    /// OpenBLAS's worker threads spin (sched_yield) for 2^28 cycles, about 0.1 s, after each
    /// GEMM, so they compete with our own loops (im2col, col2im, epilogues) that run between
    /// GEMMs: on 2 cores that cost the generator 10-20 % of its time and 3x the system time.
    /// Unless the user chose `OPENBLAS_THREAD_TIMEOUT`, we set it to 4 (2^4 cycles: workers
    /// sleep as soon as a GEMM is done) and restart OpenBLAS's threads, which read it when
    /// they start; OpenBLAS starts them again on the next GEMM (as after a fork). Runs once,
    /// before the process's first GEMM, so that no GEMM is in flight. A program with threads of
    /// its own (a server) reads this at start, before they exist, since `setenv` must not race
    /// with `getenv`. True when it changed the setting. Triggered by `init`, off the GEMM path.
    public static let quietWorkers: Bool = {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil,
              let readEnv = dlsym(nil /* RTLD_DEFAULT */, "openblas_read_env"),
              let shutdown = dlsym(nil /* RTLD_DEFAULT */, "blas_thread_shutdown_") else { return false }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        typealias VoidFunction = @convention(c) () -> Void
        unsafeBitCast(readEnv, to: VoidFunction.self)()
        unsafeBitCast(shutdown, to: VoidFunction.self)()
        return true
    }()

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { let row = c + i * ldc; for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] } }
            return
        }
        mfs_pool_quiesce()
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    public func sgemv(transA: Bool, rows: Int, cols: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        let m = transA ? cols : rows
        if m == 0 { return }
        if rows == 0 || cols == 0 {
            for i in 0..<m { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        mfs_pool_quiesce()
        cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, blasint(rows), blasint(cols),
                    alpha, a, blasint(lda), x, 1, beta, y, 1)
    }

    public func setThreads(_ count: Int) {
        if openblas_get_num_threads() != Int32(count) { openblas_set_num_threads(Int32(count)) }
    }

    /// OpenBLAS's build configuration and the core it chose (for `--profile`).
    public static var configuration: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "?"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "\(config) core=\(core)"
    }
}

/// A plain triple loop: slow and obviously right, for tests of the kernels that call a backend.
public struct ReferenceGemm: GemmBackend {
    public init() {}
    public var name: String { "reference" }

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += av * bv
                }
                let old = c[i * ldc + j]
                c[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * old)
            }
        }
    }
}
