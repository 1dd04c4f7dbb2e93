import Foundation

/// Why `audit` or `purge` stopped before writing anything (exit 2): a corpus whose report is
/// missing, or whose kept files no longer match it, or side files that do not load.
public struct CorpusFailure: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// A filtered corpus as `audit` and `purge` take it (SPEC §11): its `report.json`, checked
/// kept files, and the policy it was filtered with.
public struct Corpus {
  public let directory: String
  /// SHA-256 of `DIR/report.json`'s bytes.
  public let reportSHA256: String
  /// The kept files' paths relative to `directory` (`kept/NAME`), in path order, each of
  /// which had the SHA-256 the report states when opened.
  public let keptFiles: [String]
  /// The report's `policy`, as settings (a policy file's form).
  public let settings: PolicySettings

  /// Opens the corpus in `directory`: reads its report and re-hashes every kept file.
  public init(directory: String) throws(CorpusFailure) {
    self.directory = directory
    let root: OutputFolder
    do {
      root = try OutputLayout.openExisting(directory)
    } catch {
      throw CorpusFailure(message: error.description)
    }
    guard let bytes = root.contents(of: "report.json", limit: 1 << 30),
      let report = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)),
      case .array(let outputs)? = report["outputs"], let policy = report["policy"]
    else {
      throw CorpusFailure(message: "\(directory)/report.json: missing or not a report")
    }
    reportSHA256 = sha256Hex(bytes)
    do {
      settings = try PolicySettings.parse(policy, from: "\(directory)/report.json policy")
    } catch {
      throw CorpusFailure(message: error.message)
    }
    var kept: [String] = []
    let folder = root.entryKind("kept") == .directory ? try? root.subfolder("kept") : nil
    for output in outputs {
      guard case .string(let path)? = output["path"], path.hasPrefix("kept/"),
        case .string(let sha)? = output["sha256"]
      else { continue }
      let name = String(path.dropFirst("kept/".count))
      guard let folder, let actual = folder.sizeAndSHA256(name), actual.sha256 == sha else {
        throw CorpusFailure(
          message: "\(directory)/\(path): missing or changed since the report was written")
      }
      kept.append(path)
    }
    keptFiles = kept.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
  }

  /// The corpus's policy with a new cutoff: `cutoff` as given (RFC 3339), or `runStart`.
  public func policy(cutoff: String?, runStart: Timestamp) throws(UsageError) -> Policy {
    var s = settings
    s.cutoff = cutoff ?? runStart.rfc3339
    return try s.policy(runStart: runStart)
  }

  /// The folder `audit` writes to by default: `DIR/audit/` and the cutoff in UTC as
  /// `YYYYMMDDTHHMMSS`, its fraction digits as given (after a `.`) when it has any, and `Z`.
  public static func auditFolderName(cutoff: Timestamp, given: String?) -> String {
    let utc = cutoff.rfc3339
    let whole = utc.prefix(19).filter { $0 != "-" && $0 != ":" }
    var fraction = ""
    if let given, let dot = given.firstIndex(of: ".") {
      fraction = String(given[given.index(after: dot)...].prefix { $0.isASCII && $0.isNumber })
    } else if given == nil, let dot = utc.firstIndex(of: ".") {
      fraction = String(utc[utc.index(after: dot)...].dropLast())
    }
    return whole + (fraction.isEmpty ? "" : "." + fraction) + "Z"
  }
}
