import Foundation

/// The rows of a `--pairs` CSV file: `source,target[,mask]` per line, paths relative to the file.
/// Blank lines and lines starting with `#` are skipped, and so is a header row starting with
/// `source`. Rows keep their line numbers so reports can point at them.
public struct PairList: Sendable {
    public struct Row: Sendable, Equatable {
        /// 1-based line number in the file.
        public var line: Int
        public var fields: [String]

        /// The row's source, target and optional mask, or why the row is unusable.
        public func paths() throws -> (source: String, target: String, mask: String?) {
            guard (2...3).contains(fields.count), !fields[0].isEmpty, !fields[1].isEmpty else {
                throw ImageError.invalidArgument("line \(line): expected source,target[,mask], got \(fields.count) field(s)")
            }
            return (fields[0], fields[1], fields.count == 3 && !fields[2].isEmpty ? fields[2] : nil)
        }
    }

    public var rows: [Row]

    public init(csv text: String) {
        var rows: [Row] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if fields.allSatisfy(\.isEmpty) || fields[0].hasPrefix("#") { continue }
            if rows.isEmpty && fields[0].lowercased() == "source" { continue }
            rows.append(Row(line: index + 1, fields: fields))
        }
        self.rows = rows
    }

    /// Every `count`-th row starting at `index` (0-based), so `count` machines split one list.
    public func shard(index: Int, count: Int) -> [Row] {
        precondition(count >= 1 && (0..<count).contains(index))
        return rows.enumerated().filter { $0.offset % count == index }.map(\.element)
    }
}
