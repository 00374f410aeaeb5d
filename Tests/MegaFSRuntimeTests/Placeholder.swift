import Testing
@testable import MegaFSRuntime
@Test func placeholderRuntime() {}
