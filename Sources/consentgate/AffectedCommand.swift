import ArgumentParser
import ConsentGate

struct AffectedCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "affected",
    abstract: "Which kept files of a corpus hold which users, from its lineage files alone.",
    discussion: """
      Exit status: 0 none of the users is held, 4 some are, 2 the corpus has no lineage or a
      lineage file does not match its report, 64 usage error.
      """
  )

  @Option(help: "The output folder of a filter run with --lineage.")
  var corpus: String

  @Option(help: "A file of user ids, one a line, as canonical text.")
  var users: String?

  @Option(help: "A user id (repeatable).")
  var user: [String] = []

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  func run() throws {
    guard users != nil || !user.isEmpty else {
      throw usageFailure(UsageError("give --users FILE or --user ID"))
    }
    var ids = Set(user.map { Array($0.utf8) })
    if let users {
      do {
        ids.formUnion(try AffectedQuery.readUsers(users))
      } catch {
        throw usageFailure(error)
      }
    }
    AffectedQuery.keepBuffersMapped()
    let answer: AffectedQuery
    do {
      answer = try AffectedQuery.run(corpus: corpus, users: ids)
    } catch {
      printError("consentgate: affected: \(error.message)")
      throw ExitCode(2)
    }
    print(json ? answer.json.pretty : answer.text)
    if answer.usersHeld > 0 { throw ExitCode(4) }
  }
}
