// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "consentgate",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "ConsentGate", targets: ["ConsentGate"]),
    .executable(name: "consentgate", targets: ["consentgate"]),
  ],
  // Optional accelerated codecs; the default build needs only zlib.
  traits: [
    .trait(
      name: "ISAL",
      description: "ISA-L for gzip input and for output levels 1-3 (Debian libisal-dev)"),
    .trait(
      name: "LIBDEFLATE",
      description: "libdeflate for gzip output levels 4-9 (Debian libdeflate-dev)"),
    .trait(
      name: "ZSTD",
      description: "zstd inputs and --compression zstd through libzstd (Debian libzstd-dev)"),
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
    // Wrappers over ISA-L, libdeflate and libzstd, compiled to stubs unless a trait enables
    // them.
    .target(
      name: "CCodecs",
      cSettings: [
        .define("CG_ISAL", .when(traits: ["ISAL"])),
        .define("CG_LIBDEFLATE", .when(traits: ["LIBDEFLATE"])),
        .define("CG_ZSTD", .when(traits: ["ZSTD"])),
      ],
      linkerSettings: [
        .linkedLibrary("isal", .when(traits: ["ISAL"])),
        .linkedLibrary("deflate", .when(traits: ["LIBDEFLATE"])),
        .linkedLibrary("zstd", .when(traits: ["ZSTD"])),
      ]
    ),
    .target(
      name: "ConsentGate",
      dependencies: [
        "CZlib",
        "CScanKernels",
        "CCodecs",
        .product(name: "Crypto", package: "swift-crypto"),
      ]
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
      dependencies: ["ConsentGate", "CZlib", "CCodecs"],
      path: "Fuzz/Sources"
    ),
    .testTarget(
      name: "ConsentGateTests",
      dependencies: [
        "ConsentGate", "CScanKernels", "CCodecs", "CZlib",
        .product(name: "Crypto", package: "swift-crypto"),
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
