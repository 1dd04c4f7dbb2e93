import Foundation

/// The folders of an output directory (SPEC §4, §8), each opened once without following a
/// link: `kept/`, `quarantine/` and `_done/` (created), `lineage/` (created with lineage on,
/// cleared wherever it is present).
struct OutputLayout: Sendable {
  /// The subfolders the tool owns: each must be a real directory where it exists.
  static let folders = ["kept", "quarantine", "_done", "lineage", "reports"]
  /// The subfolders an input must not lie in: the tool clears them.
  static let clearedFolders = ["kept", "quarantine", "lineage", "_done"]

  let root: OutputFolder
  let kept: OutputFolder
  let quarantine: OutputFolder
  let done: OutputFolder
  let lineage: OutputFolder?
  /// Whether this run writes `lineage/` files (else any there are cleared).
  let writesLineage: Bool

  init(root: OutputFolder, lineage writesLineage: Bool) throws(OutputError) {
    self.root = root
    self.writesLineage = writesLineage
    kept = try root.subfolder("kept")
    quarantine = try root.subfolder("quarantine")
    done = try root.subfolder("_done")
    lineage =
      writesLineage || root.entryKind("lineage") != .missing
      ? try root.subfolder("lineage") : nil
  }

  /// Removes the entries of the output folders that belong to an output name `owns`
  /// accepts (their temporaries and completion records included), but for the files of
  /// `outputNames`. Never descends into a subfolder or through a link.
  func clear(keeping outputNames: [String], owns: (String) -> Bool) {
    let names = Set(outputNames)
    for folder in [kept, quarantine, lineage].compactMap({ $0 }) {
      let keep = folder === lineage && !writesLineage ? [] : names
      for entry in folder.entries() where !keep.contains(entry) {
        if owns(Self.committedName(entry)) { folder.remove(entry) }
      }
    }
    for entry in done.entries() {
      var name = Self.committedName(entry)
      if name.hasSuffix(".json") { name.removeLast(5) }
      if entry == CompletionRecords.recordName(name) && names.contains(name) { continue }
      if owns(name) { done.remove(entry) }
    }
  }

  /// The final name an entry stands for: a temporary `.NAME.tmp-TOKEN` stands for `NAME`.
  static func committedName(_ entry: String) -> String {
    guard entry.hasPrefix("."), let tmp = entry.range(of: ".tmp-", options: .backwards) else {
      return entry
    }
    return String(entry[entry.index(after: entry.startIndex)..<tmp.lowerBound])
  }

  /// Opens an existing output folder (a corpus) for reading or merging: each of its
  /// subfolders that exists must be a real directory.
  static func openExisting(_ directory: String) throws(OutputError) -> OutputFolder {
    let root = try OutputFolder(path: directory)
    try root.requireRealFolders(folders)
    return root
  }

  /// `report.json` of `root` as JSON, or nil when it is missing or not JSON.
  static func readReport(_ root: OutputFolder) -> JSONValue? {
    guard let bytes = root.contents(of: "report.json", limit: 1 << 30) else { return nil }
    return try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
  }

  /// The first input whose real path lies inside one of `directory`'s cleared output
  /// folders, which would be deleted before it is read. A folder that is a link is not
  /// resolved here: the run refuses it anyway (``OutputFolder/requireRealFolders(_:)``).
  static func inputInsideOutputs(_ inputs: [String], directory: String) -> String? {
    guard let root = realPath(directory) else { return nil }
    let folders = clearedFolders.compactMap { name -> String? in
      var info = stat()
      let path = root == "/" ? "/\(name)" : "\(root)/\(name)"
      guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
      return path + "/"
    }
    guard !folders.isEmpty else { return nil }
    for input in inputs where input != "-" {
      guard let real = realPath(input) else { continue }
      if folders.contains(where: { real.hasPrefix($0) }) { return input }
    }
    return nil
  }

  private static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }
}
