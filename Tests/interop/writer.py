#!/usr/bin/env python3
"""Another writer of ChatFlow state, in Python, for the interop tests.

    writer.py ROOT ID MODE COUNT

Each of COUNT steps advances instance ID by one phase under the instance's flock, in one of
four ways:
  format   the current format (2), as docs/FORMAT.md says: the state read as "Reading a state"
           says (recovered from the history's last commit line when the state file is behind
           or torn, a view_crc32 that does not match counting as torn), the closed entry
           appended with the new state in it and synced (the commit), then the view written
           into the spare in place with its view_crc32 and swapped in (RENAME_EXCHANGE),
           without syncs
  format2  the same as the text before views were checked: no view_crc32 read or written, the
           view written to the temp name (truncating the spare) and renamed over the state file
  format1  format 1: the history line synced, then the state file replaced with syncs
  read     prints the committed state, read as "Reading a state" says (COUNT is ignored)
  killed   appends a commit line and syncs it, then exits without writing the state file (a
           writer cut off between its commit and its view)
  phase    the original v1.0 habit of setting current_phase (and status) and rewriting the
           file, with no history entry at all
  v1list   the original v1.0 layout: a `history` list inside the state file, the open entry
           closed and a new one appended per phase
It prints nothing; it exits 3 when the instance is already finished.
"""
import ctypes, fcntl, json, os, re, sys, time, zlib

root, instance, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
state_path = os.path.join(root, "instances", instance + ".json")
temp_path = os.path.join(root, "instances", "." + instance + ".json.tmp")
history_path = os.path.join(root, "instances", instance, "history.ndjson")
start_path = os.path.join(root, "instances", instance, "start.json")


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


def parse_view(raw):
    """A state file's bytes as a state, or None when torn (not JSON, or its check fails)."""
    check = CHECK.match(raw) if mode != "format2" else None
    if check and int(check.group(1), 16) != zlib.crc32(raw[check.end():]):
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    state.pop("view_crc32", None)
    return state


def write_view(state):
    """The state file replaced as a view of the commit line: no syncs."""
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


def is_entry(value):
    return (isinstance(value, dict) and value.get("status") in ("running", "completed", "failed")
            and isinstance(value.get("phase"), str) and isinstance(value.get("started_at"), (int, float)))


def read_locked():
    """The committed state, read with the instance's lock held ("Reading a state", step 3)."""
    with open(state_path, "rb") as f:
        state = parse_view(f.read())   # None: what a power cut leaves of a view; recover
    try:
        fd = os.open(history_path, os.O_RDWR)
    except FileNotFoundError:
        return state
    try:
        size = os.fstat(fd).st_size
        start = state["history_bytes"] if state is not None and "history_bytes" in state else 0
        if state is not None and size <= start:
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
            write_view(found)
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
    if mode in ("format", "format2", "format1", "killed"):
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
    else:
        sys.exit("unknown mode " + mode)


lock = os.open(os.path.join(root, ".locks", instance + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
if mode == "read":
    print(json.dumps(read_state(lock), sort_keys=True))
    sys.exit(0)
for _ in range(count):
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        # Older writers know nothing of view_crc32: they keep it as an unknown key, where sorting
        # puts it mid-object (no longer a check; readers then ignore it).
        state = read_locked() if mode in ("format", "format2", "killed") else json.load(open(state_path))
        if state["status"] in ("completed", "failed"):
            sys.exit(3)
        step(state, time.time())
        if mode == "killed":
            sys.exit(0)
        (write_view if mode in ("format", "format2") else commit)(state)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
