/// Lower-case hexadecimal, the one way ChatFlow writes and reads it: instance ids, claim tokens,
/// the commit log's CRCs, JSON's `\u00XX` escapes.
package enum Hex {
    package static let digits = Array("0123456789abcdef".utf8)

    /// `value` in exactly `width` digits (its low `4 × width` bits), zero-padded.
    package static func padded(_ value: UInt64, width: Int) -> String {
        String(decoding: bytes(value, width: width), as: UTF8.self)
    }

    /// `value` in exactly `width` digits, as bytes.
    package static func bytes(_ value: UInt64, width: Int) -> [UInt8] {
        (0..<width).reversed().map { digits[Int((value >> UInt64(4 * $0)) & 0xF)] }
    }

    /// The value of lower-case hex digits (at most 16); nil for anything else.
    package static func value(_ text: some Collection<UInt8>) -> UInt64? {
        guard !text.isEmpty, text.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }
}
