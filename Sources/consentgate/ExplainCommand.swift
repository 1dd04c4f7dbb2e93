import ArgumentParser
import ConsentGate

struct ExplainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "explain",
    abstract:
      "Show a user's consent events, jurisdiction signals and the decision for their records."
  )

  @Option(help: "The user id, as ledger and tag files write it.")
  var user: String

  @Flag(help: "Print JSON instead of text.")
  var json = false

  @OptionGroup var policyOptions: PolicyOptions

  func run() throws {
    let settings: PolicySettings
    let policy: Policy
    do {
      settings = try takingIndexCutoff(try policyOptions.merged())
      policy = try settings.policy(runStart: Timestamp.now())
    } catch let error as UsageError {
      throw usageFailure(error)
    }
    let index = try settings.index.map {
      try openIndex(
        $0, policy: policy, consent: settings.consent ?? [],
        jurisdictions: settings.jurisdictions ?? [])
    }
    do {
      let explanation = try Explanation.explain(
        userId: user, policy: policy, consent: settings.consent ?? [],
        jurisdictions: settings.jurisdictions ?? [], index: index)
      print(json ? explanation.json.pretty : explanation.text)
    } catch {
      for e in error.errors { printError("consentgate: \(e)") }
      throw ExitCode(2)
    }
  }
}
