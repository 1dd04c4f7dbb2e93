import CZlib
import Crypto

/// Lowercase hex SHA-256 of `bytes`.
public func sha256Hex(_ bytes: [UInt8]) -> String {
  hexString(SHA256.hash(data: bytes))
}

/// The zlib version linked at run time.
public let zlibVersionString = String(cString: zlibVersion())
