/// Validation of every identifier that becomes part of a path.
///
/// Instance ids are `wfi_` and 12 lowercase hex digits; feature ids, workflow names, phase names and
/// artifact names are 1–128 characters of `[A-Za-z0-9._-]` not starting with `.`, so none can
/// name a parent directory, a hidden file or a temp file. Phase names may not start with `@`
/// either (reserved for hooks such as `@any`), which the character set already excludes.
public enum Identifiers {
    public static let maximumNameLength = 128

    /// Throws unless `value` is `wfi_` followed by 12 lowercase hex digits.
    public static func validateInstanceID(_ value: String) throws(ChatFlowError) {
        guard isInstanceID(value) else {
            throw .invalidIdentifier(
                kind: .instanceID, value: value, reason: "expected 'wfi_' followed by 12 lowercase hex digits")
        }
    }

    /// Whether `value` is a well-formed instance id.
    public static func isInstanceID(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard utf8.count == 16, utf8.starts(with: "wfi_".utf8) else { return false }
        return utf8.dropFirst(4).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Throws unless `value` is a safe name of the given kind.
    public static func validateName(_ value: String, kind: IdentifierKind) throws(ChatFlowError) {
        if let reason = nameProblem(value) {
            throw .invalidIdentifier(kind: kind, value: value, reason: reason)
        }
    }

    /// Why `value` is not a safe name, or `nil` when it is.
    public static func nameProblem(_ value: String) -> String? {
        let utf8 = value.utf8
        if utf8.isEmpty { return "must not be empty" }
        if utf8.count > maximumNameLength { return "longer than \(maximumNameLength) characters" }
        if utf8.first == UInt8(ascii: ".") { return "must not start with '.'" }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                return "only letters, digits, '.', '_' and '-' are allowed"
            }
        }
        return nil
    }

    /// A fresh random instance id.
    public static func newInstanceID() -> String {
        var generator = SystemRandomNumberGenerator()
        return instanceID(generator.next())
    }

    /// The instance id of a 48-bit number (`wfi_` and its 12 hex digits).
    package static func instanceID(_ value: UInt64) -> String { "wfi_" + Hex.padded(value, width: 12) }
}
