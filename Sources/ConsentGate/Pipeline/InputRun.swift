import Foundation

/// What one input produced.
struct InputResult {
  var input: InputReport
  var outputs: [OutputReport] = []
  var warnings: [String] = []
  var outputFailed = false
  /// Taken from an earlier run by --resume.
  var reused = false
}

/// Filters one input into `kept/NAME` and `quarantine/NAME`.
///
/// Both files are written under temporary names and renamed only when the input was read to
/// its end and every byte was written; a truncated, corrupt or unreadable input, or a failed
/// write, leaves no file under a final name.
struct InputRun {
  let path: String
  let outputName: String
  let layout: OutputLayout
  let policy: Policy
  let blockTarget: Int
  let directOutput: Bool

  /// Runs the input. `ahead` is what ``InputPrefetch`` read of it while the side files
  /// loaded: its blocks go first, then reading goes on where it stopped.
  func execute(
    pool: OrderedWorkPool?, inline: BlockProcessor?, ahead: InputPrefetch.ReadAhead? = nil,
    onMessage: (String) -> Void, onProgress: (FilterProgress) -> Void
  ) -> InputResult {
    var result = InputResult(input: InputReport(path: path))
    let framer: BlockFramer
    do throws(InputError) {
      if let ahead {
        framer = try ahead.opened.get()
      } else {
        framer = try BlockFramer(
          path: path, blockTarget: blockTarget, maxRecordBytes: policy.maxRecordBytes)
      }
    } catch {
      result.input.status = error.status
      let text = message(for: error, afterLine: 0)
      onMessage(text)
      // SPEC §12 names this one's `error` text exactly.
      if case .unreadable(_, let detail) = error, detail == DecodingReader.zstdNotBuilt {
        result.input.error = detail
      } else {
        result.input.error = text
      }
      return result
    }
    let reader = framer.reader
    let source = reader.source
    let keptPath = "kept/\(outputName)"
    let quarantinePath = "quarantine/\(outputName)"
    let kept: OutputFile
    let quarantine: OutputFile
    do {
      kept = try OutputFile(in: layout.kept, name: outputName, direct: directOutput)
      quarantine = try OutputFile(in: layout.quarantine, name: outputName, direct: directOutput)
    } catch {
      result.outputFailed = true
      result.input.error = "cannot write \(error.description)"
      onMessage(result.input.error!)
      result.input.sha256 = try? fileSHA256(path)
      return result
    }
    var sourceJSON: [UInt8] = []
    JSONString.appendQuoted(source.displayName, to: &sourceJSON)

    let sink = BlockSink(kept: kept, quarantine: quarantine, lineage: policy.lineage)
    if let pool {
      // The bytes read so far (the format sniff, or the read-ahead) were hashed as they were
      // read; the pool's writer takes over from there.
      pool.beginInputHash(continuing: reader.startLending(to: pool))
      framer.takeBuffer = { pool.takeBuffer() }
      pool.startInput(sink)
    }
    // Blocks read ahead are in memory already: queued without waiting for room, so that the
    // reading thread goes on inflating meanwhile.
    func process(_ block: RecordBlock, readAhead: Bool) {
      if let pool {
        pool.submit(block, sourceJSON: sourceJSON, waiting: !readAhead)
      } else {
        sink.consume(inline!.process(block, sourceJSON: sourceJSON))
      }
    }
    for block in ahead?.blocks ?? [] { process(block, readAhead: true) }
    var inputError = ahead?.error
    do {
      while inputError == nil, let block = try framer.next() {
        process(block, readAhead: false)
        onProgress(
          FilterProgress(
            input: source.displayName, bytesRead: source.bytesRead, bytesTotal: source.knownSize,
            records: pool?.recordsDone ?? sink.counts.records))
        if pool == nil && sink.writeError != nil { break }
      }
    } catch {
      inputError = error
    }
    // Read and hash what is left, so the SHA-256 covers the whole file even after an error.
    if inputError != nil || source.displayName != "-" { source.drain() }
    let digest = pool?.finishInput() ?? source.sha256Hex()
    result.input.counts = sink.counts
    result.input.sha256 = digest
    result.input.bytesCompressed = source.bytesRead
    result.input.bytesUncompressed = reader.bytesDecoded
    if let error = inputError {
      kept.discard()
      quarantine.discard()
      result.input.status = error.status
      result.input.error = message(for: error, afterLine: framer.linesFramed)
      onMessage(result.input.error!)
      return result
    }
    result.warnings = reader.warnings
    for w in reader.warnings { onMessage(w) }
    if sink.writeError == nil,
      let compressor = makeBlockCompressor(policy.compression, level: policy.level)
    {
      // An empty compressed output is one empty member or frame: a valid file of its kind.
      for file in [kept, quarantine] where file.bytesWritten == 0 {
        var frame: [UInt8] = []
        compressor.compress([], appendingTo: &frame)
        do { try file.write(frame) } catch { sink.fail(error) }
      }
    }
    // lineage/NAME: written once the input is read to its end, committed with the others.
    var lineage: OutputFile?
    if sink.writeError == nil, let users = sink.keptPerUser, let folder = layout.lineage {
      do {
        let file = try OutputFile(in: folder, name: outputName)
        lineage = file
        try LineageFile.write(users, to: file, policy: policy)
      } catch {
        sink.fail(error)
      }
    }
    if let writeError = sink.writeError {
      kept.discard()
      quarantine.discard()
      lineage?.discard()
      result.outputFailed = true
      result.input.error = "cannot write \(writeError.description)"
      onMessage(result.input.error!)
      return result
    }
    do {
      let keptHash = try kept.commit()
      let quarantineHash = try quarantine.commit()
      result.outputs = [
        OutputReport(
          path: keptPath, sha256: keptHash, records: kept.records, bytes: kept.bytesWritten),
        OutputReport(
          path: quarantinePath, sha256: quarantineHash, records: quarantine.records,
          bytes: quarantine.bytesWritten),
      ]
      if let lineage {
        let hash = try lineage.commit()
        result.outputs.append(
          OutputReport(
            path: "lineage/\(outputName)", sha256: hash, records: lineage.records,
            bytes: lineage.bytesWritten))
      }
    } catch {
      layout.kept.remove(outputName)
      layout.quarantine.remove(outputName)
      layout.lineage?.remove(outputName)
      quarantine.discard()
      lineage?.discard()
      result.outputFailed = true
      result.input.error = "cannot write \(error.description)"
      onMessage(result.input.error!)
    }
    return result
  }

  private func message(for error: InputError, afterLine line: Int) -> String {
    let place = line > 0 ? " after line \(line)" : ""
    switch error {
    case .unreadable(let name, let detail): return "\(name): unreadable: \(detail)"
    case .truncated(let name): return "\(name): truncated stream\(place)"
    case .corrupt(let name, let detail): return "\(name): corrupt data\(place): \(detail)"
    }
  }
}
