#!/usr/bin/env python3
"""Another writer of ChatFlow state, in Python, for the interop tests.

    writer.py ROOT ID MODE COUNT

Each of COUNT steps advances instance ID by one phase under the instance's flock, in one of
these ways:
  format   the current text, as docs/FORMAT.md says: the store's commit log replayed first if
           the machine restarted since ("The commit log"), the state read as "Reading a state"
           says (recovered from the history's last commit line when the state file is behind
           or torn, a view_crc32 that does not match counting as torn), the closed entry
           appended with the new state in it (no sync), the same lines appended to the commit
           log under its lock and the log synced (the commit), then the view written into the
           spare in place with its view_crc32 and swapped in (RENAME_EXCHANGE), without syncs
  synced   the text before the commit log: the same, but the history line itself synced (the
           commit) and no log written or read
  format2  the text before views were checked: as synced, but no view_crc32 read or written,
           the view written to the temp name (truncating the spare) and renamed over the state file
  format1  format 1: the history line synced, then the state file replaced with syncs
  read     prints the committed state, read as "Reading a state" says, after replaying the
           commit log if the machine restarted since (COUNT is ignored)
  killed   appends a commit line and commits it to the log, then exits without writing the
           state file (a writer cut off between its commit and its view)
  phase    the original v1.0 habit of setting current_phase (and status) and rewriting the
           file, with no history entry at all
  v1list   the original v1.0 layout: a `history` list inside the state file, the open entry
           closed and a new one appended per phase
As people write the file by hand or with a script (each under the instance's flock, moving
current_phase on and, but for sed, setting a variable; no history entry):
  dump     json.load, then json.dump with the defaults (the keys in the order read, so a stale
           view_crc32 stays first), truncating the file in place
  indent   the same with indent=2
  sorted   the same with indent=2 and sort_keys=True (view_crc32 moves mid-object)
  sed      `sed -i` replacing the current_phase line (a new file renamed over the old)
It prints nothing; it exits 3 when the instance is already finished.
"""
import ctypes, fcntl, json, os, re, subprocess, sys, time, zlib

root, instance, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def paths(of):
    """The state file, its spare, the history and start.json of instance `of`."""
    return (os.path.join(root, "instances", of + ".json"), os.path.join(root, "instances", "." + of + ".json.tmp"),
            os.path.join(root, "instances", of, "history.ndjson"), os.path.join(root, "instances", of, "start.json"))


state_path, temp_path, history_path, start_path = paths(instance)


def commit(state):
    """The state file replaced durably (format 1's commit point)."""
    with open(temp_path, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fdatasync(f.fileno())
    os.rename(temp_path, state_path)
    fd = os.open(os.path.dirname(state_path), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)


CHECK = re.compile(rb'^\{"view_crc32": "([0-9a-f]{8})",')
libc = ctypes.CDLL(None, use_errno=True)


def parse_view(raw, stale_check_is_torn=True):
    """A state file's bytes as a state, or None when torn: not JSON, or its check fails while
    `stale_check_is_torn` (a read without the lock, or a replay after a power cut). Under the
    lock in a replayed boot a failed check is another writer's complete view (it kept a stale
    view_crc32), taken as it is."""
    check = CHECK.match(raw) if mode != "format2" else None
    if stale_check_is_torn and check and int(check.group(1), 16) != zlib.crc32(raw[check.end():]):
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    state.pop("view_crc32", None)
    return state


def write_view(state, of=instance):
    """The state file replaced as a view of the commit line: no syncs."""
    state_path, temp_path, _, _ = paths(of)
    text = (json.dumps(state, indent=2, sort_keys=True) + "\n").encode()
    if mode == "format2":
        with open(temp_path, "wb") as f:
            f.write(text)
        os.rename(temp_path, state_path)
        return
    body = text[1:]
    data = b'{"view_crc32": "%08x",' % zlib.crc32(body) + body
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    # renameat2(AT_FDCWD, temp, AT_FDCWD, state, RENAME_EXCHANGE); a plain rename where it fails.
    if libc.renameat2(-100, temp_path.encode(), -100, state_path.encode(), 2) != 0:
        os.rename(temp_path, state_path)


# The store's commit log (docs/FORMAT.md, "The commit log").
LOG_PATH = os.path.join(root, "commit.log")
LOG_TEMP = os.path.join(root, ".commit.log.tmp")
LOG_LOCK = os.path.join(root, ".locks", "commit.lock")
# A new log's size; an existing log's ring is its file's size.
NEW_LOG_SIZE, DATA_START, SECTOR = int(os.environ.get("CHATFLOW_COMMIT_LOG_SIZE", 1 << 20)), 4096, 512
with open("/proc/sys/kernel/random/boot_id") as f:
    BOOT = f.read().strip()


def log_header(base):
    body = b"%020d\n" % base
    return b"cfh1 %08x " % zlib.crc32(body) + body


def parse_header(data):
    if data[:5] != b"cfh1 " or data[13:14] != b" " or data[34:35] != b"\n":
        return None
    try:
        crc = int(data[5:13], 16)
    except ValueError:
        return None
    return int(data[14:34]) if crc == zlib.crc32(data[14:35]) and data[14:34].isdigit() else None


def padded(length):
    return -(-length // SECTOR) * SECTOR


def log_record(seq, offset, lines):
    """The record, zero-padded to whole sectors."""
    body = b"%d %s %d %d\n" % (seq, instance.encode(), offset, len(lines)) + lines
    record = b"cfr1 %08x " % zlib.crc32(body) + body
    return record + bytes(padded(len(record)) - len(record))


def parse_record(data, start):
    """(seq, instance id, offset, lines, end) of the record at start, or None."""
    if data[start:start + 5] != b"cfr1 " or data[start + 13:start + 14] != b" ":
        return None
    newline = data.find(b"\n", start + 14, start + 14 + 128)
    fields = data[start + 14:newline].split(b" ") if newline >= 0 else []
    if len(fields) != 4 or not all(f.isdigit() for f in (fields[0], fields[2], fields[3])):
        return None
    try:
        crc = int(data[start + 5:start + 13], 16)
        who = fields[1].decode()
    except (ValueError, UnicodeDecodeError):
        return None
    end = newline + 1 + int(fields[3])
    if end > len(data) or zlib.crc32(data[start + 14:end]) != crc or not re.fullmatch("wfi_[0-9a-f]{12}", who):
        return None
    return int(fields[0]), who, int(fields[2]), data[newline + 1:end], padded(end)


def read_head(lock_fd):
    text = os.pread(lock_fd, 79, 0)
    if len(text) != 79 or text[78:79] != b"\n" or not text[37:57].isdigit() or not text[58:78].isdigit():
        return None
    return text[:36].decode("latin-1"), int(text[37:57]), int(text[58:78])


def write_head(lock_fd, seq, offset):
    os.pwrite(lock_fd, b"%s %020d %020d\n" % (BOOT.encode(), seq, offset), 0)


def replay(lock_fd):
    """Every record of the current lap written into its history where it is missing, and this
    boot recorded. With the log's lock."""
    log = os.open(LOG_PATH, os.O_RDWR)
    try:
        data = os.pread(log, os.fstat(log).st_size, 0)
        base = parse_header(data)
        if base is None:
            # Torn by a checkpoint, after its syncfs: nothing to replay; a fresh ring.
            os.pwrite(log, log_header(1) + bytes(len(data) - 35), 0)
            os.fdatasync(log)
            write_head(lock_fd, 1, DATA_START)
            return
        seq, offset = base, DATA_START
        replayed = set()
        while True:
            found = parse_record(data, offset)
            if found is None or found[0] != seq:
                break
            _, who, at, lines, offset = found
            folder = os.path.join(root, "instances", who)
            if os.path.isdir(folder) or os.path.exists(folder + ".json"):
                os.makedirs(folder, exist_ok=True)
                fd = os.open(os.path.join(folder, "history.ndjson"), os.O_RDWR | os.O_CREAT, 0o644)
                if os.pread(fd, len(lines), at) != lines:
                    os.pwrite(fd, lines, at)
                os.close(fd)
            replayed.add(who)
            seq += 1
        # The views the lap's commits wrote (unsynced) are the only ones a power cut can have torn.
        for who in sorted(replayed):
            if not os.path.exists(paths(who)[0]):
                continue
            # Without waiting: a writer holding an instance's lock may wait for the log's.
            fd = os.open(os.path.join(root, ".locks", who + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                read_locked(who, after_cut=True)
            except (OSError, ValueError, KeyError, SystemExit):
                pass
            finally:
                os.close(fd)
        # Not synced: a power cut before the next checkpoint makes the next boot replay again.
        write_head(lock_fd, seq, offset)
    finally:
        os.close(log)


def ensure_recovered():
    """Before reading: replay the log if the machine restarted since the store was last used."""
    if not os.path.exists(LOG_PATH):
        return
    lock_fd = os.open(LOG_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        head = read_head(lock_fd)
        if head and head[0] == BOOT:
            return
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        head = read_head(lock_fd)
        if not head or head[0] != BOOT:
            replay(lock_fd)
    finally:
        os.close(lock_fd)


def log_commit(offset, lines):
    """The commit: lines (already written to the history at offset, unsynced) appended to the
    log as one record and the log synced."""
    lock_fd = os.open(LOG_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if not os.path.exists(LOG_PATH):
            fd = os.open(LOG_TEMP, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.pwrite(fd, log_header(1) + bytes(NEW_LOG_SIZE - 35), 0)
            os.fdatasync(fd)
            os.close(fd)
            os.rename(LOG_TEMP, LOG_PATH)
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)
            write_head(lock_fd, 1, DATA_START)
        head = read_head(lock_fd)
        if head is None or head[0] != BOOT:
            replay(lock_fd)
            head = read_head(lock_fd)
        _, seq, at = head
        record = log_record(seq, offset, lines)
        log = os.open(LOG_PATH, os.O_RDWR)
        try:
            if at + len(record) > os.fstat(log).st_size:
                # The lap ends: every history durable, then the header names the next lap.
                libc.syncfs(log)
                os.pwrite(log, log_header(seq) + bytes(SECTOR - 35), 0)
                os.fdatasync(log)
                at = DATA_START
            os.pwrite(log, record, at)
            os.fdatasync(log)
        finally:
            os.close(log)
        write_head(lock_fd, seq + 1, at + len(record))
    finally:
        os.close(lock_fd)


def is_entry(value):
    return (isinstance(value, dict) and value.get("status") in ("running", "completed", "failed")
            and isinstance(value.get("phase"), str) and isinstance(value.get("started_at"), (int, float)))


def read_locked(of=instance, after_cut=False):
    """The committed state, read with the instance's lock held ("Reading a state", step 3), or
    by the replay after a power cut (`after_cut`)."""
    state_path, _, history_path, start_path = paths(of)
    with open(state_path, "rb") as f:
        raw = f.read()
    state = parse_view(raw, stale_check_is_torn=after_cut)   # None: what a power cut leaves of a view; recover
    try:
        fd = os.open(history_path, os.O_RDWR)
    except FileNotFoundError:
        return state
    try:
        size = os.fstat(fd).st_size
        start = state["history_bytes"] if state is not None and "history_bytes" in state else 0
        if state is not None and size <= start:
            if CHECK.match(raw) and mode != "format2" and parse_view(raw) is None:
                write_view(state, of)   # another writer's view: checked again
            return state
        os.fdatasync(fd)
        tail = os.pread(fd, size - start, start)
        found, offset = None, start
        for line in tail.split(b"\n")[:-1]:
            offset += len(line) + 1
            try:
                value = json.loads(line)
            except ValueError:
                break
            if not is_entry(value):
                break
            if isinstance(value.get("state"), dict):
                found = dict(value["state"], history_bytes=offset)
        if found is not None:
            if "workflow_schema" not in found:
                # The schema never changes: the state file has it, or start.json when it is torn.
                if state is None:
                    with open(start_path) as f:
                        state = json.load(f)
                found["workflow_schema"] = state["workflow_schema"]
            os.ftruncate(fd, found["history_bytes"])
            write_view(found, of)
            return found
        if state is None:
            sys.exit("corrupt: the state file is not JSON and the history has no commit")
        os.ftruncate(fd, start)
        return state
    finally:
        os.close(fd)


def read_state(lock_fd):
    """Steps 1-3 of "Reading a state", for a reader that holds no lock."""
    with open(state_path, "rb") as f:
        state = parse_view(f.read())
    if state is not None:
        size = os.stat(history_path).st_size if os.path.exists(history_path) else 0
        if size <= state.get("history_bytes", 0):
            return state
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        return read_locked()
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)


def next_phase(state):
    names = [p["name"] if isinstance(p, dict) else p for p in state["workflow_schema"]["phases"]]
    index = names.index(state["current_phase"])
    return names[index + 1] if index + 1 < len(names) else None


def step(state, now):
    before = json.loads(json.dumps(state))
    target = next_phase(state)
    if mode in ("format", "synced", "format2", "format1", "killed"):
        entry = dict(state["current_entry"], ended_at=now, status="completed", trigger_data_snapshot={"by": "python"})
        state["variables"] = dict(state.get("variables", {}), by="python")
        state["updated_at"] = now
        if target is None:
            state.update(status="completed", current_entry=None)
        else:
            state.update(previous_phase=state["current_phase"], current_phase=target, status="running",
                         history_length=state["history_length"] + 1,
                         current_entry={"phase": target, "task": None, "started_at": now, "ended_at": None,
                                        "status": "running", "trigger_data_snapshot": None})
        committed = state["history_bytes"]
        if mode != "format1":
            if not os.path.exists(start_path):
                # Started by a format 1 writer: the state as read (durable) serves as start.json.
                with open(start_path, "w") as f:
                    json.dump(before, f, indent=2, sort_keys=True)
                    f.write("\n")
                    f.flush()
                    os.fdatasync(f.fileno())
                fd = os.open(os.path.dirname(start_path), os.O_RDONLY | os.O_DIRECTORY)
                os.fsync(fd)
                os.close(fd)
            state["format_version"] = 2
            entry["state"] = {k: v for k, v in state.items() if k not in ("history_bytes", "workflow_schema")}
        os.makedirs(os.path.dirname(history_path), exist_ok=True)
        fd = os.open(history_path, os.O_WRONLY | os.O_CREAT)
        os.ftruncate(fd, committed)
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
        os.pwrite(fd, line, committed)
        if mode in ("format", "killed"):
            log_commit(committed, line)
        else:
            os.fdatasync(fd)
        os.close(fd)
        state["history_bytes"] = committed + len(line)
    elif mode == "phase":
        state["updated_at"] = now
        if target is None:
            state["status"] = "completed"
        else:
            state.update(current_phase=target, status="running")
    elif mode == "v1list":
        history = state.setdefault("history", [])
        if history:
            history[-1].update(ended_at=now, status="completed", trigger_data_snapshot={"by": "python"})
        state["updated_at"] = now
        if target is None:
            state["status"] = "completed"
        else:
            history.append({"phase": target, "task": None, "started_at": now, "ended_at": None,
                            "status": "running", "trigger_data_snapshot": None})
            state.update(current_phase=target, status="running")
    elif mode in ("dump", "indent", "sorted", "sed"):
        state["current_phase"] = target or state["current_phase"]
        if target is None:
            state["status"] = "completed"
        if mode != "sed":
            state["variables"]["by_" + mode] = state["variables"].get("by_" + mode, 0) + 1
    else:
        sys.exit("unknown mode " + mode)


def write_by_hand(before, state):
    """The file rewritten as people do, keeping whatever they did not mean to change."""
    if mode == "sed":
        pattern = 's/"current_phase": "%s"/"current_phase": "%s"/' % (before["current_phase"], state["current_phase"])
        subprocess.run(["sed", "-i", pattern, state_path], check=True)
        return
    with open(state_path, "w") as f:
        if mode == "dump":
            json.dump(state, f)
        else:
            json.dump(state, f, indent=2, sort_keys=(mode == "sorted"))


lock = os.open(os.path.join(root, ".locks", instance + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
if mode in ("format", "killed", "read"):
    ensure_recovered()
if mode == "read":
    print(json.dumps(read_state(lock), sort_keys=True))
    sys.exit(0)
for _ in range(count):
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        # Older writers know nothing of view_crc32: they keep it as an unknown key, where sorting
        # puts it mid-object (no longer a check; readers then ignore it).
        state = read_locked() if mode in ("format", "synced", "format2", "killed") else json.load(open(state_path))
        if state["status"] in ("completed", "failed"):
            sys.exit(3)
        before = dict(state)
        step(state, time.time())
        if mode == "killed":
            sys.exit(0)
        if mode in ("dump", "indent", "sorted", "sed"):
            write_by_hand(before, state)
        else:
            (write_view if mode in ("format", "synced", "format2") else commit)(state)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
