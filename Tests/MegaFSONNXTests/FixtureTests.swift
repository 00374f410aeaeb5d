import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSONNX

/// One model listed in `fixtures/manifest.json`.
struct FixtureEntry {
    var name: String
    var modelPath: String
    var inputs: [String]?
    var outputs: [String]?
    /// False when the manifest gave inputs/outputs as object keys (sorted here, order unknown).
    var ordered = true
}

/// The repository's `fixtures/` folder, found from this file's path.
let fixturesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()  // MegaFSONNXTests
    url.deleteLastPathComponent()  // Tests
    url.deleteLastPathComponent()  // repository root
    return url.appendingPathComponent("fixtures").path
}()

/// Reads the manifest leniently: a list of entries, or an object holding one under "models" or
/// "fixtures", or an object mapping names to entries. Entries name their inputs and outputs as
/// strings or as objects with a "name".
func loadFixtureManifest(in fixturesDirectory: String = fixturesDirectory) -> [FixtureEntry]? {
    guard let data = FileManager.default.contents(atPath: fixturesDirectory + "/manifest.json"),
          let json = try? JSONSerialization.jsonObject(with: data) else { return nil }

    func names(_ value: Any?) -> [String]? {
        guard let list = value as? [Any] else {
            if let map = value as? [String: Any] { return map.keys.sorted() }
            return nil
        }
        return list.compactMap { ($0 as? String) ?? (($0 as? [String: Any])?["name"] as? String) }
    }

    func entry(_ value: Any, name fallback: String?) -> FixtureEntry? {
        guard let object = value as? [String: Any],
              let name = (object["name"] as? String) ?? fallback else { return nil }
        let relative = (object["model"] as? String) ?? (object["path"] as? String) ?? (object["onnx"] as? String)
            ?? "\(name)/model.onnx"
        let path = relative.hasPrefix("/") ? relative
            : FileManager.default.fileExists(atPath: fixturesDirectory + "/" + relative) ? fixturesDirectory + "/" + relative
            : fixturesDirectory + "/\(name)/model.onnx"
        let ordered = !(object["inputs"] is [String: Any]) && !(object["outputs"] is [String: Any])
        return FixtureEntry(name: name, modelPath: path, inputs: names(object["inputs"]), outputs: names(object["outputs"]),
                            ordered: ordered)
    }

    if let list = json as? [Any] { return list.compactMap { entry($0, name: nil) } }
    guard let object = json as? [String: Any] else { return nil }
    if let list = (object["models"] ?? object["fixtures"]) as? [Any] { return list.compactMap { entry($0, name: nil) } }
    if let map = (object["models"] ?? object["fixtures"]) as? [String: Any] {
        return map.sorted { $0.key < $1.key }.compactMap { entry($0.value, name: $0.key) }
    }
    return object.sorted { $0.key < $1.key }.compactMap { entry($0.value, name: $0.key) }
}

@Suite("Fixture models")
struct FixtureTests {
    @Test func importsEveryFixtureModel() throws {
        guard let entries = loadFixtureManifest(), !entries.isEmpty else {
            // fixtures/manifest.json is produced by another part of the project; nothing to check yet.
            return
        }
        var imported = 0
        for fixture in entries {
            guard FileManager.default.fileExists(atPath: fixture.modelPath) else {
                Issue.record("fixture \(fixture.name): \(fixture.modelPath) is listed in the manifest but missing")
                continue
            }
            do {
                let graph = try ONNXImporter(options: ImportOptions(checkOperators: false)).importModel(atPath: fixture.modelPath)
                // Names listed in an array must match in order; names given as object keys, as a set.
                if let inputs = fixture.inputs {
                    let names = graph.inputs.map(\.name)
                    #expect(fixture.ordered ? names == inputs : names.sorted() == inputs, "inputs of fixture \(fixture.name)")
                }
                if let outputs = fixture.outputs {
                    let names = graph.outputs.map(\.name)
                    #expect(fixture.ordered ? names == outputs : names.sorted() == outputs, "outputs of fixture \(fixture.name)")
                }
                #expect(!graph.nodes.isEmpty, "fixture \(fixture.name) has no nodes")
                // And it survives a round trip through the writer.
                let back = try ONNXImporter(options: ImportOptions(checkOperators: false))
                    .importModel(bytes: ONNXWriter().serialize(graph))
                expectSameGraph(back, graph)
                imported += 1
            } catch {
                Issue.record("fixture \(fixture.name): \(error)")
            }
        }
        #expect(imported == entries.count)
    }

    @Test func manifestParsingAcceptsCommonShapes() throws {
        // Guards the lenient parser itself, on manifests written to a scratch folder.
        let dir = makeTemporaryDirectory()
        defer { removeTemporaryDirectory(dir) }
        let listed = #"{"models": [{"name": "tiny", "inputs": ["x", {"name": "y"}], "outputs": [{"name": "z", "shape": [1]}]}]}"#
        writeFile(dir + "/manifest.json", Array(listed.utf8))
        let entries = loadFixtureManifest(in: dir)
        #expect(entries?.count == 1)
        #expect(entries?.first?.name == "tiny")
        #expect(entries?.first?.modelPath == dir + "/tiny/model.onnx")
        #expect(entries?.first?.inputs == ["x", "y"])
        #expect(entries?.first?.outputs == ["z"])

        let mapped = #"{"gen": {"path": "gen/model.onnx", "inputs": {"struct": [1], "latents": [1]}, "outputs": ["image"]}}"#
        writeFile(dir + "/manifest.json", Array(mapped.utf8))
        let second = loadFixtureManifest(in: dir)
        #expect(second?.first?.name == "gen")
        #expect(second?.first?.inputs == ["latents", "struct"])
        #expect(second?.first?.outputs == ["image"])
    }
}
