import COpenBLAS

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
    public init() {}
    public var name: String { "openblas" }

    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { let row = c + i * ldc; for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] } }
            return
        }
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
