import Testing
@testable import MegaFSGraph

struct NetworkMatrixTests {
    let gemm = GemmOperator.self
    let matmul = MatMulOperator.self
    let bn = BatchNormalizationOperator.self
    let a = NetOp.f([1, 2, 3, 4], [2, 2])
    let b = NetOp.f([5, 6, 7, 8], [2, 2])

    // MARK: Gemm

    @Test func gemmDefaultsAndScaling() throws {
        #expect(NetOp.close(try NetOp.run(gemm, [a, b]), [19, 22, 43, 50]))
        // alpha 2, beta 0.5, C (N,) broadcast over rows.
        let y = try NetOp.run(gemm, [a, b, NetOp.f([1, 2], [2])], ["alpha": .float(2), "beta": .float(0.5)])
        #expect(NetOp.close(y, [38.5, 45, 86.5, 101]))
        // C (M, 1) broadcast over columns; C scalar.
        let col = try NetOp.run(gemm, [a, b, NetOp.f([10, 20], [2, 1])])
        #expect(NetOp.close(col, [29, 32, 63, 70]))
        let scalar = try NetOp.run(gemm, [a, b, Tensor(scalar: Float(1))], ["beta": .float(-1)])
        #expect(NetOp.close(scalar, [18, 21, 42, 49]))
    }

    @Test func gemmTransposes() throws {
        // A^T B = [[1,3],[2,4]] x [[5,6],[7,8]]
        #expect(NetOp.close(try NetOp.run(gemm, [a, b], ["transA": .int(1)]), [26, 30, 38, 44]))
        // A B^T = [[1,2],[3,4]] x [[5,7],[6,8]]
        #expect(NetOp.close(try NetOp.run(gemm, [a, b], ["transB": .int(1)]), [17, 23, 39, 53]))
        #expect(NetOp.close(try NetOp.run(gemm, [a, b], ["transA": .int(1), "transB": .int(1)]), [23, 31, 34, 46]))
        // Non-square: (1x3) B^T with B (2x3).
        let r = try NetOp.run(gemm, [NetOp.f([1, 2, 3], [1, 3]), NetOp.f([1, 0, 0, 1, 1, 1], [2, 3])], ["transB": .int(1)])
        #expect(r.shape == [1, 2])
        #expect(NetOp.close(r, [1, 6]))
    }

    @Test func gemmShapeRuleAndErrors() throws {
        let t = try NetOp.infer(gemm, [NetOp.type(.symbolic("N"), .fixed(16)), NetOp.type([8, 16]), NetOp.type([8])],
                                ["transB": .int(1)])
        #expect(t == [NetOp.type(.symbolic("N"), .fixed(8))])
        let k = NetOp.graphError { try NetOp.infer(self.gemm, [NetOp.type([2, 3]), NetOp.type([4, 5])]) }
        #expect(k?.contains("inner dimensions") == true)
        let c = NetOp.graphError { try NetOp.infer(self.gemm, [NetOp.type([2, 3]), NetOp.type([3, 5]), NetOp.type([3])]) }
        #expect(c?.contains("broadcast") == true)
        let rank = NetOp.graphError { try NetOp.infer(self.gemm, [NetOp.type([2, 3, 1]), NetOp.type([3, 5])]) }
        #expect(rank?.contains("2-D") == true)
        let flag = NetOp.graphError { try NetOp.infer(self.gemm, [NetOp.type([2, 3]), NetOp.type([3, 5])], ["transA": .int(2)]) }
        #expect(flag?.contains("transA") == true)
    }

    // MARK: MatMul

    @Test func matmulVectorsFollowNumPy() throws {
        let v = NetOp.f([1, 2, 3], [3])
        let dot = try NetOp.run(matmul, [v, v])
        #expect(dot.shape == [])
        #expect(NetOp.close(dot, [14]))
        let m = NetOp.f([1, 0, 0, 1, 1, 1], [3, 2])
        let vm = try NetOp.run(matmul, [v, m])
        #expect(vm.shape == [2])
        #expect(NetOp.close(vm, [4, 5]))
        let mv = try NetOp.run(matmul, [NetOp.f([1, 0, 2, 0, 1, 0], [2, 3]), v])
        #expect(mv.shape == [2])
        #expect(NetOp.close(mv, [7, 2]))
    }

    @Test func matmulBroadcastsBatches() throws {
        // (2,1,2,2) x (3,2,2) -> (2,3,2,2); B batch j scales by j+1.
        let lhs = NetOp.f([1, 2, 3, 4, 0, 1, 1, 0], [2, 1, 2, 2])
        let eye = [Float(1), 0, 0, 1]
        let rhs = NetOp.f((1...3).flatMap { s in eye.map { $0 * Float(s) } }, [3, 2, 2])
        let y = try NetOp.run(matmul, [lhs, rhs])
        #expect(y.shape == [2, 3, 2, 2])
        let expected: [Float] = [1, 2, 3, 4, 2, 4, 6, 8, 3, 6, 9, 12, 0, 1, 1, 0, 0, 2, 2, 0, 0, 3, 3, 0]
        #expect(NetOp.close(y, expected))
    }

    @Test func matmulShapeRule() throws {
        let t = try NetOp.infer(matmul, [NetOp.type(.symbolic("N"), .fixed(1), .fixed(3), .fixed(4)), NetOp.type([5, 4, 2])])
        #expect(t[0].shape == [.symbolic("N"), .fixed(5), .fixed(3), .fixed(2)])
        let v = try NetOp.infer(matmul, [NetOp.type([4]), NetOp.type([4])])
        #expect(v[0].shape == [])
        let k = NetOp.graphError { try NetOp.infer(self.matmul, [NetOp.type([2, 3]), NetOp.type([4, 5])]) }
        #expect(k?.contains("inner dimensions") == true)
        let batch = NetOp.graphError { try NetOp.infer(self.matmul, [NetOp.type([2, 2, 3]), NetOp.type([3, 3, 5])]) }
        #expect(batch?.contains("broadcast") == true)
        let scalar = NetOp.graphError { try NetOp.infer(self.matmul, [NetOp.type([Int]()), NetOp.type([3])]) }
        #expect(scalar?.contains("rank") == true)
    }

    // MARK: BatchNormalization

    @Test func batchNormInference() throws {
        let x = NetOp.f([1, 2, 3, 4], [1, 2, 1, 2])
        let params = [NetOp.f([1, 2], [2]), NetOp.f([0, 1], [2]), NetOp.f([1, 3], [2]), NetOp.f([4, 1], [2])]
        let y = try NetOp.run(bn, [x] + params, ["epsilon": .float(0)])
        // channel 0: (x-1)/2; channel 1: (x-3)*2 + 1
        #expect(NetOp.close(y, [0, 0.5, 1, 3]))
        // The default epsilon 1e-5 is applied.
        let d = try NetOp.run(bn, [x] + params)
        #expect(abs(d.floats[1] - Float(1 / (4 + 1e-5).squareRoot() * 1.0)) < 1e-6)
        // Rank 2 (N, C).
        let y2 = try NetOp.run(bn, [NetOp.f([1, 3], [1, 2])] + params, ["epsilon": .float(0)])
        #expect(NetOp.close(y2, [0, 1]))
    }

    @Test func batchNormRejectsTrainingAndBadShapes() throws {
        let x = NetOp.type(.symbolic("N"), .fixed(3), .fixed(4), .fixed(4))
        let p = NetOp.type([3])
        #expect(try NetOp.infer(bn, [x, p, p, p, p]) == [x])
        let training = NetOp.graphError { try NetOp.infer(self.bn, [x, p, p, p, p], ["training_mode": .int(1)]) }
        #expect(training?.contains("training_mode") == true)
        let stats = NetOp.graphError { try NetOp.infer(self.bn, [x, p, p, p, p], outputs: ["y", "mean", "var"]) }
        #expect(stats?.contains("training") == true)
        let wrong = NetOp.graphError { try NetOp.infer(self.bn, [x, p, NetOp.type([4]), p, p]) }
        #expect(wrong?.contains("B has 4 values") == true)
        let few = NetOp.graphError { try NetOp.infer(self.bn, [x, p, p]) }
        #expect(few?.contains("5 inputs") == true)
    }
}
