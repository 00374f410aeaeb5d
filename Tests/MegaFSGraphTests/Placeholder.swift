import Testing
@testable import MegaFSGraph
@Test func placeholderGraph() {}
