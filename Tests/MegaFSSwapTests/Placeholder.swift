import Testing
@testable import MegaFSSwap
@Test func placeholderSwap() {}
