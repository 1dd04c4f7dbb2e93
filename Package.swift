// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "consentgate",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "ConsentGate", targets: ["ConsentGate"]),
    .executable(name: "consentgate", targets: ["consentgate"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
  ],
  targets: [
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]
    ),
    // SSE2 kernel for the JSON string scan: Swift's SIMD types do not compile to it.
    .target(name: "CScanKernels"),
    .target(
      name: "ConsentGate",
      dependencies: [
        "CZlib",
        "CScanKernels",
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
    ),
    .executableTarget(
      name: "consentgate",
      dependencies: [
        "ConsentGate",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(
      name: "consentgate-bench",
      dependencies: ["ConsentGate", "CZlib"],
      path: "Benchmarks/Throughput"
    ),
    .executableTarget(
      name: "consentgate-fuzz",
      dependencies: ["ConsentGate"],
      path: "Fuzz/Sources"
    ),
    .testTarget(
      name: "ConsentGateTests",
      dependencies: ["ConsentGate"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
