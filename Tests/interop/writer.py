#!/usr/bin/env python3
"""Another writer of ChatFlow state, in Python, for the interop tests.

    writer.py ROOT ID MODE COUNT

Each of COUNT steps advances instance ID by one phase under the instance's flock, in one of
three ways:
  format   the current format, as docs/FORMAT.md says (history.ndjson, history_bytes, ...)
  phase    the original v1.0 habit of setting current_phase (and status) and rewriting the
           file, with no history entry at all
  v1list   the original v1.0 layout: a `history` list inside the state file, the open entry
           closed and a new one appended per phase
It prints nothing; it exits 3 when the instance is already finished.
"""
import fcntl, json, os, sys, time

root, instance, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
state_path = os.path.join(root, "instances", instance + ".json")
temp_path = os.path.join(root, "instances", "." + instance + ".json.tmp")
history_path = os.path.join(root, "instances", instance, "history.ndjson")


def commit(state):
    with open(temp_path, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fdatasync(f.fileno())
    os.rename(temp_path, state_path)
    fd = os.open(os.path.dirname(state_path), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)


def next_phase(state):
    names = [p["name"] if isinstance(p, dict) else p for p in state["workflow_schema"]["phases"]]
    index = names.index(state["current_phase"])
    return names[index + 1] if index + 1 < len(names) else None


def step(state, now):
    target = next_phase(state)
    if mode == "format":
        entry = dict(state["current_entry"], ended_at=now, status="completed", trigger_data_snapshot={"by": "python"})
        os.makedirs(os.path.dirname(history_path), exist_ok=True)
        fd = os.open(history_path, os.O_WRONLY | os.O_CREAT)
        os.ftruncate(fd, state["history_bytes"])
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
        os.pwrite(fd, line, state["history_bytes"])
        os.fdatasync(fd)
        os.close(fd)
        state["history_bytes"] += len(line)
        state["updated_at"] = now
        if target is None:
            state.update(status="completed", current_entry=None)
        else:
            state.update(previous_phase=state["current_phase"], current_phase=target, status="running",
                         history_length=state["history_length"] + 1,
                         current_entry={"phase": target, "task": None, "started_at": now, "ended_at": None,
                                        "status": "running", "trigger_data_snapshot": None})
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
for _ in range(count):
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with open(state_path) as f:
            state = json.load(f)
        if state["status"] in ("completed", "failed"):
            sys.exit(3)
        step(state, time.time())
        commit(state)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
