import Testing
@testable import MegaFSFormat
@Test func placeholderFormat() {}
