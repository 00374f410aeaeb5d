import MegaFSGraph

/// Errors from loading, planning and running a model. Each prints as one line.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    /// The model uses operators or attributes this runtime cannot run; every problem is listed.
    case unsupportedModel([String])
    case unknownInput(name: String, expected: [String])
    case missingInput(name: String)
    case wrongInputType(name: String, expected: String, got: String)
    case wrongInputShape(name: String, expected: String, got: [Int])
    case planning(String)
    case kernel(node: String, String)
    case modelFile(String)

    public var description: String {
        switch self {
        case .unsupportedModel(let problems):
            return "model not supported by the runtime: " + problems.joined(separator: "; ")
        case .unknownInput(let name, let expected):
            return "unknown input '\(name)' (the model's inputs: \(expected.joined(separator: ", ")))"
        case .missingInput(let name):
            return "missing input '\(name)'"
        case .wrongInputType(let name, let expected, let got):
            return "input '\(name)' has element type \(got), the model expects \(expected)"
        case .wrongInputShape(let name, let expected, let got):
            return "input '\(name)' has shape \(got), the model expects \(expected)"
        case .planning(let m):
            return "cannot plan the model: \(m)"
        case .kernel(let node, let m):
            return "node \(node): \(m)"
        case .modelFile(let m):
            return m
        }
    }
}
