import Testing
@testable import MegaFSONNX
@Test func placeholderONNX() {}
