import ArgumentParser
import ConsentGate

struct RulesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rules",
    abstract: "Print the tables decisions are made from (the age of digital consent, SPEC §13.2)."
  )

  @Flag(help: "The age of digital consent by state, with effective dates.")
  var children = false

  @Flag(help: "Print JSON instead of text.")
  var json = false

  func run() throws {
    // The children table is the only one for now: it is printed with or without the flag.
    print(json ? AgeOfConsent.json.pretty : AgeOfConsent.text)
  }
}
