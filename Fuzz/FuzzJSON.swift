// libFuzzer target: the strict JSON parser (scripts/fuzz.sh builds it with ChatFlow's sources).
// Properties: parsing never crashes; what parses, written compactly, parses back to the same value.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONValue(parsing: bytes) else { return 0 }
    let written = Array(value.compactText.utf8)
    guard let again = try? JSONValue(parsing: written) else { fatalError("written JSON does not parse: \(value.compactText)") }
    guard again == value else { fatalError("round trip changed the value: \(value.compactText)") }
    return 0
}
