import ArgumentParser
import ConsentGate

struct GenerateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "generate",
    abstract: "Write a deterministic synthetic export, consent ledger and jurisdiction tags."
  )

  @Option(help: "Records in the export.") var records: Int
  @Option(help: "Distinct users.") var users: Int
  @Option(help: "Random seed: the same seed gives the same bytes.") var seed: UInt64 = 1
  @Option(help: "Output folder.") var out: String
  @Option(help: "Split the export into this many files.") var files: Int = 1
  @Flag(help: "No edge cases that other tools treat differently (for peer comparisons).")
  var clean = false
  @Flag(help: "Add a bad ledger row, for --lenient-ledger.") var brokenLedgerRow = false
  @Flag(help: "Add one record over 16 MiB, for record_too_large.") var oversized = false
  @Flag(help: "One record in three quotes other users at /includes/tweets/*/author_id.")
  var embeds = false

  func validate() throws {
    guard records >= 0, users >= 1, files >= 1 else {
      throw ValidationError("--records must be ≥ 0, --users and --files ≥ 1")
    }
  }

  func run() throws {
    var options = ExportGenerator.Options()
    options.records = records
    options.users = users
    options.seed = seed
    options.files = files
    options.clean = clean
    options.brokenLedgerRow = brokenLedgerRow
    options.oversized = oversized
    options.embeds = embeds
    let written = try ExportGenerator(options: options).write(to: out)
    for name in written.exports + [written.consent, written.jurisdictions] {
      print("\(out)/\(name)")
    }
  }
}
