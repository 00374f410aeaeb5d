import Testing
@testable import MegaFSConverter
@Test func placeholderConverter() {}
