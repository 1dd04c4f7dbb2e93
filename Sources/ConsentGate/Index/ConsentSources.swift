/// What an index file contributes to a report (SPEC §9 `index`).
public struct IndexSummary: Sendable, Equatable {
  public var path: String
  public var sha256: String
  public var format: Int
  public var users: Int

  public var json: JSONValue {
    .object([
      ("path", .string(path)), ("sha256", .string(sha256)), ("format", .int(Int64(format))),
      ("users", .int(Int64(users))),
    ])
  }
}

/// Who consented, for one run: the side files loaded into memory, or an index file mapped.
/// Either way the same facts, and the same `consent` and `jurisdictions` for the report.
public struct ConsentSources: Sendable {
  public var lookup: UserLookup
  public var consentFiles: [SideFileSummary]
  public var jurisdictionFiles: [SideFileSummary]
  /// Set when the facts come from an index file.
  public var index: IndexSummary?

  /// Loads the side files, or (when `index` is given) verifies the index: a bad side file or
  /// index is a ``SideFileFailure`` (exit 2), naming the file and line or section.
  public static func load(
    policy: Policy, consent: [String], jurisdictions: [String], index: MappedIndex?
  ) throws(SideFileFailure) -> ConsentSources {
    if let index {
      let sha256: String
      do {
        sha256 = try index.verify()
      } catch {
        throw SideFileFailure(errors: [error.asSideFileError])
      }
      let h = index.header
      return ConsentSources(
        lookup: .mapped(index.lookup(protection: policy.protection)),
        consentFiles: h.consentFiles, jurisdictionFiles: h.jurisdictionFiles,
        index: IndexSummary(path: index.path, sha256: sha256, format: h.format, users: h.users))
    }
    var loader = SideFileLoader(policy: policy)
    try loader.load(consent: consent, jurisdictions: jurisdictions)
    return ConsentSources(
      lookup: .loaded(loader.index), consentFiles: loader.consentFiles,
      jurisdictionFiles: loader.jurisdictionFiles, index: nil)
  }

  /// The side files in their roles with their SHA-256s, as completion records compare them
  /// (SPEC §8).
  var roles: [(String, String)] {
    if let index { return [("index", index.sha256)] }
    return consentFiles.map { ("consent", $0.sha256) }
      + jurisdictionFiles.map { ("jurisdictions", $0.sha256) }
  }

  /// Opens `path` for a run with `policy`, before anything is touched: a file that is no
  /// index is exit 2, a policy field that differs from the baked one is a usage error
  /// naming it (exit 64), and `--index` beside `--consent` or `--jurisdictions` is one too.
  public static func openIndex(
    _ path: String, policy: Policy, consent: [String], jurisdictions: [String]
  ) throws(FilterFailure) -> MappedIndex {
    guard consent.isEmpty && jurisdictions.isEmpty else {
      throw .usage(UsageError("--index cannot be given with --consent or --jurisdictions"))
    }
    let index: MappedIndex
    do {
      index = try MappedIndex(path: path)
    } catch {
      throw .sideFiles(SideFileFailure(errors: [error.asSideFileError]))
    }
    if let field = index.header.policy.mismatch(with: policy) {
      throw .usage(
        UsageError(
          "--index \(path) was built with another \(field); give the same \(field) or rebuild the index"
        ))
    }
    return index
  }
}

extension IndexError {
  var asSideFileError: SideFileError {
    SideFileError(file: path, line: nil, message: "index section \(section): \(detail)")
  }
}
