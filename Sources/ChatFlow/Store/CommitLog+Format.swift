import CChatFlowShims
import Glibc
import Synchronization

/// The commit log's texts (docs/FORMAT.md, "The commit log"): the lock file's head, the log's
/// header and its records, formatted in place and parsed strictly.
extension CommitLog {
    /// The current boot (`/proc/sys/kernel/random/boot_id`). Unreadable, a value of this process
    /// alone, so it replays (safe, and only slow).
    static let bootID: [UInt8] = {
        if let file = try? FileDescriptor(opening: "/proc/sys/kernel/random/boot_id", flags: O_RDONLY),
           let bytes = try? file.readAll(limit: 4096) {
            let id = Array(bytes.prefix(while: { $0 != 0x0A }))
            if id.count == 36 { return id }
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let own = Array("unknown-\(getpid())-\(now.tv_sec)-\(now.tv_nsec)".utf8).prefix(36)
        return Array(own) + [UInt8](repeating: UInt8(ascii: "-"), count: 36 - own.count)
    }()

    /// Where the next record goes, and the boot in which the log was last replayed.
    struct Head: Equatable {
        var boot: [UInt8]
        var seq: Int
        var offset: Int
    }

    /// The lock file's text: `<boot id> <seq> <offset>\n`, fixed width (79 bytes), so each write
    /// replaces the last whole. Built in place: it is written on every commit.
    static func fillHead(_ head: Head, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        for index in 0..<36 { buffer[index] = head.boot[index] }
        buffer[36] = 0x20
        putDigits(head.seq, into: buffer, at: 37, width: 20)
        buffer[57] = 0x20
        putDigits(head.offset, into: buffer, at: 58, width: 20)
        buffer[78] = 0x0A
    }

    static let headLength = 79

    static func readHead(_ lock: Int32) -> Head? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headLength) { buffer -> Head? in
            let got = pread(lock, buffer.baseAddress, headLength, 0)
            let bytes = UnsafeBufferPointer(buffer)
            guard got == headLength, bytes[78] == 0x0A, bytes[36] == 0x20, bytes[57] == 0x20,
                  let seq = number(bytes[37..<57]), let offset = number(bytes[58..<78]),
                  seq >= 1, offset >= dataStart, offset % sector == 0
            else { return nil }
            return Head(boot: Array(bytes[0..<36]), seq: seq, offset: offset)
        }
    }

    static func writeHead(_ lock: Int32, _ head: Head, path: String) throws(ChatFlowError) {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headLength) { (buffer) throws(ChatFlowError) in
            fillHead(head, into: buffer)
            let written = try retryingEINTR("write", path) { pwrite(lock, buffer.baseAddress, headLength, 0) }
            // Never short for 79 bytes at offset 0 of a regular file, short of a full disk.
            guard written == headLength else { throw .io(operation: "write", path: path, errno: ENOSPC) }
        }
    }

    /// The header: `cfh1 <crc32> <first seq of this lap, 20 digits>\n`, the CRC (8 hex digits,
    /// zlib's) of the digits and newline.
    static func header(base: Int) -> [UInt8] {
        let body = digits(base, width: 20) + [0x0A]
        return Array("cfh1 ".utf8) + hex(CRC32.checksum(body)) + [0x20] + body
    }

    static func parseHeader(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 35, bytes.starts(with: Array("cfh1 ".utf8)), bytes[13] == 0x20, bytes[34] == 0x0A,
              let crc = hexValue(bytes[5..<13]), CRC32.checksum(bytes[14..<35]) == crc
        else { return nil }
        return number(bytes[14..<34])
    }

    /// An empty log: the header at sequence 1, then zeros.
    static func emptyLog(size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        let head = header(base: 1)
        bytes.replaceSubrange(0..<head.count, with: head)
        return bytes
    }

    /// A record: `cfr1 <crc32> <seq> <instance id> <offset> <length>\n` then the lines (length
    /// bytes), zero-padded to whole sectors: the CRC is of everything after `cfr1 <crc32> ` up to
    /// the padding, so a record torn or mixed with an older one fails it.
    static func record(seq: Int, instance: String, offset: Int, lines: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(14 + 64 + lines.count)
        bytes.append(contentsOf: "cfr1 00000000 ".utf8)
        appendDecimal(seq, to: &bytes)
        bytes.append(0x20)
        bytes.append(contentsOf: instance.utf8)
        bytes.append(0x20)
        appendDecimal(offset, to: &bytes)
        bytes.append(0x20)
        appendDecimal(lines.count, to: &bytes)
        bytes.append(0x0A)
        bytes.append(contentsOf: lines)
        let crc = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[14...])) }
        bytes.replaceSubrange(5..<13, with: hex(crc))
        return bytes
    }

    /// Appends `value` (not negative) in decimal.
    static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        let width = decimalCount(value)
        bytes.append(contentsOf: repeatElement(0, count: width))
        let start = bytes.count - width
        bytes.withUnsafeMutableBufferPointer { putDigits(value, into: $0, at: start, width: width) }
    }

    /// A bound on `record`'s length: the sequence number at its widest.
    static func recordLength(instance: String, offset: Int, lines: [UInt8]) -> Int {
        14 + 19 + 1 + instance.utf8.count + 1 + decimalCount(offset) + 1 + decimalCount(lines.count) + 1 + lines.count
    }

    static func decimalCount(_ value: Int) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 { digits += 1; rest /= 10 }
        return digits
    }

    struct Record {
        var seq: Int
        var instanceID: String
        var offset: Int
        var lines: [UInt8]
        /// Where the next record starts.
        var end: Int
    }

    static func parseRecord(_ bytes: [UInt8], at start: Int) -> Record? {
        guard start + 14 <= bytes.count, bytes[start..<(start + 5)].elementsEqual("cfr1 ".utf8), bytes[start + 13] == 0x20,
              let crc = hexValue(bytes[(start + 5)..<(start + 13)])
        else { return nil }
        let bodyStart = start + 14
        guard let newline = bytes[bodyStart..<min(bytes.count, bodyStart + 128)].firstIndex(of: 0x0A) else { return nil }
        let fields = bytes[bodyStart..<newline].split(separator: 0x20, omittingEmptySubsequences: false)
        guard fields.count == 4, let seq = number(fields[0]), let offset = number(fields[2]), let length = number(fields[3]),
              length <= bytes.count - newline - 1
        else { return nil }
        let end = newline + 1 + length
        guard CRC32.checksum(bytes[bodyStart..<end]) == crc else { return nil }
        let id = String(decoding: fields[1], as: UTF8.self)
        guard Identifiers.isInstanceID(id) else { return nil }
        return Record(seq: seq, instanceID: id, offset: offset, lines: Array(bytes[(newline + 1)..<end]), end: padded(end))
    }

    static func digits(_ value: Int, width: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: width) { buffer, count in
            putDigits(value, into: buffer, at: 0, width: width)
            count = width
        }
    }

    /// `value` (not negative, at most `width` digits) as `width` decimal digits, zero-padded.
    static func putDigits(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int, width: Int) {
        var rest = value
        for index in stride(from: start + width - 1, through: start, by: -1) {
            buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
    }

    static func hex(_ value: UInt32) -> [UInt8] { Hex.bytes(UInt64(value), width: 8) }

    static func hexValue(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        guard bytes.count == 8, let value = Hex.value(bytes) else { return nil }
        return UInt32(value)
    }

    static func number<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 19 || (bytes.count == 20 && bytes.first == UInt8(ascii: "0")) else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
