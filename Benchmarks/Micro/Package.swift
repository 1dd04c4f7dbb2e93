// swift-tools-version:6.1
// Micro-benchmarks of the hot path with malloc counts (ordo-one/benchmark). A package of
// its own so that its long first build stays out of the main package and out of CI.
//   cd Benchmarks/Micro && swift package benchmark
//   ./check-mallocs.sh   (compares malloc counts with the committed thresholds)
import PackageDescription

let package = Package(
  name: "consentgate-micro-benchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    // Through a link, so the package identity is "consentgate" whatever the clone is called.
    .package(path: "consentgate"),
    .package(
      url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    .executableTarget(
      name: "HotPath",
      dependencies: [
        .product(name: "ConsentGate", package: "consentgate"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/HotPath",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
  ],
  swiftLanguageModes: [.v6]
)
