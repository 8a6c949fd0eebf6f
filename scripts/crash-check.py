#!/usr/bin/env python3
"""Power-loss check of the commit protocol, by a model of its system calls (as ALICE does).

usage: scripts/crash-check.py BIN_DIR [--keep DIR]

A SIGKILL keeps the page cache, so it cannot show what a power cut does. This records the system
calls of one real `chatflow trigger` (strace), replays them on a model of a file system in which
nothing is durable until synced, and checks every state a power cut could leave:

- a file's writes and truncations are durable once `fsync`/`fdatasync` of that file returns, and a
  write on a descriptor opened `O_DSYNC` once it returns (that write only);
- a directory's entries (create, rename, exchange, unlink) once `fsync` of that directory returns;
- everything before a `syncfs` once it returns;
- a power cut is followed by a new boot: the boot id the store's commit log recorded in its lock
  file (docs/FORMAT.md, "The commit log") is not the running one, so the first reader replays;
- anything not yet durable may or may not have reached the disk, in any combination, and a write
  may be torn (only its first half there, or only its second). This is more than ext4 allows, so a protocol that
  passes here passes there.

For each crash point (after each call) and each such state, the state directory is written out and
read back with the real `chatflow` (status, history, doctor). Wrong is: a reader that fails or
sees a torn or inconsistent instance, a state other than the one before or the one after the
trigger, or, once the trigger has returned (acknowledged), the state before it.

It runs the protocol as written (expected: 0 wrong), and again with each sync removed from the
recorded trace in turn: the checker must find wrong states then, or that sync is not needed (or
the check proves nothing). Three traces: a first trigger, a later one, and one that starts from
what a power cut left (a state file behind its history), which must recover first. Exit 0 when
all hold.
"""

import concurrent.futures
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

BIN = sys.argv[1]
# Commit logs of 16 KiB (a dozen records): a megabyte per crash state made the check take hours,
# and a small ring lets a trace end a lap (its syncfs) too.
os.environ["CHATFLOW_COMMIT_LOG_SIZE"] = "16384"
CHATFLOW = os.path.join(BIN, "chatflow")
KEEP = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None


def run(*args, root):
    return subprocess.run([CHATFLOW, "--root", root, *args], capture_output=True, text=True)


def snapshot(root):
    """Files (bytes) and directories under root: the durable base before the trigger."""
    files, dirs = {}, set()
    for folder, subdirs, names in os.walk(root):
        dirs.add(folder)
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[path] = f.read()
    return files, dirs


def unescape(text):
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", text))


CALL = re.compile(r"^(?:\d+ +)?(\w+)\((.*)\) += (-?\d+)")
# With -xx every byte of a string, and of a descriptor's path, is \xHH: no quote or comma inside.
STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
FD = re.compile(r"^(\d+)<((?:\\x[0-9a-f]{2})*)>")


def text(escaped):
    return unescape(escaped).decode("utf-8", "surrogateescape")


def record(root, instance, *command):
    """The calls on files under root of one command (a trigger unless said), as model operations."""
    out = tempfile.mktemp()
    subprocess.run(
        ["strace", "-f", "-qq", "-y", "-xx", "-s", "2000000", "-o", out,
         "-e", "trace=openat,openat2,close,write,pwrite64,rename,renameat2,fsync,fdatasync,syncfs,ftruncate,fallocate,unlink,mkdir,mkdirat",
         CHATFLOW, "--root", root, *(command or ("trigger", instance, "--data", '{"n": 1}'))],
        check=True, capture_output=True)
    ops = []
    with open(out) as f:
        lines = f.read().splitlines()
    os.unlink(out)
    # The commit log's head is left out: never synced, and after a power cut its text is ignored
    # (its boot is an earlier one), so its calls change no state a reader sees; kept, each would
    # multiply the crash states by four.
    inside = lambda p: p is not None and (p == root or p.startswith(root + "/")) and not is_head(p)
    dsync = set()   # (pid, fd) of descriptors opened O_DSYNC
    for line in lines:
        match = CALL.match(line)
        if not match:
            continue
        name, args, result = match.groups()
        if int(result) < 0:
            continue
        strings = [text(s) for s in STRING.findall(args)]
        fd = FD.match(args)
        fd_path = text(fd.group(2)) if fd else None
        pid = line.split(" ", 1)[0] if line[0].isdigit() else ""
        if name == "close":
            dsync.discard((pid, fd.group(1) if fd else args.split("<", 1)[0]))
            continue
        if name in ("openat", "openat2"):
            path = strings[0] if strings else None
            if path is not None and not path.startswith("/") and fd_path is not None:
                # Relative to a directory's descriptor (the store opens an instance's files
                # beneath the state directory).
                path = fd_path + "/" + path
            if "O_DSYNC" in args:
                dsync.add((pid, result))
            if inside(path) and "O_CREAT" in args:
                ops.append(("create", path))
            if inside(path) and "O_TRUNC" in args:
                ops.append(("truncate", path, 0))
        elif name in ("write", "pwrite64"):
            if not inside(fd_path):
                continue
            data = unescape(STRING.search(args).group(1))
            offset = int(args.rsplit(", ", 1)[1]) if name == "pwrite64" else None
            ops.append(("write", fd_path, offset, data))
            if (pid, fd.group(1)) in dsync:
                # Durable when the call returns: a sync of this write alone (dropped like any sync).
                ops.append(("sync", fd_path, "O_DSYNC write"))
        elif name in ("fsync", "fdatasync", "syncfs"):
            if inside(fd_path):
                ops.append(("sync", fd_path, name))
        elif name == "fallocate":
            # Blocks allocated and the size extended: until written (and synced), zeros.
            if inside(fd_path):
                _, mode, offset, length = [part.strip() for part in args.rsplit(", ", 3)]
                if mode == "0":
                    ops.append(("write", fd_path, int(offset), bytes(int(length))))
        elif name == "ftruncate":
            if inside(fd_path):
                ops.append(("truncate", fd_path, int(args.rsplit(", ", 1)[1])))
        elif name == "rename":
            if len(strings) >= 2 and inside(strings[1]):
                ops.append(("rename", strings[0], strings[1]))
        elif name == "renameat2":
            # RENAME_EXCHANGE (a view swapped with its spare): both names, swapped at once.
            if len(strings) >= 2 and inside(strings[1]):
                ops.append(("exchange" if "RENAME_EXCHANGE" in args else "rename", strings[0], strings[1]))
        elif name == "unlink":
            if strings and inside(strings[0]):
                ops.append(("unlink", strings[0]))
        elif name in ("mkdir", "mkdirat"):
            path = strings[0] if strings else None
            if name == "mkdirat" and path is not None and not path.startswith("/") and fd_path is not None:
                path = fd_path + "/" + path
            if inside(path):
                ops.append(("mkdir", path))
    return ops


class Model:
    """Names → inodes, inodes → bytes; built from the base by applying chosen operations."""

    def __init__(self, files, dirs):
        # Contents are shared with the base until written (copied then): the commit log alone is
        # a megabyte, and there is a model per crash state.
        self.inodes = {}
        self.names = {}
        self.dirs = set(dirs)
        for number, (path, data) in enumerate(files.items()):
            self.inodes[number] = data
            self.names[path] = number
        self.next = len(files)

    def inode(self, path):
        return self.names.get(path)


def durable_flags(ops, upto):
    """For each op before `upto`: is it made durable by a later sync before `upto`?"""
    flags = []
    for index, op in enumerate(ops[:upto]):
        later = [o for o in ops[index + 1:upto] if o[0] == "sync"]
        everything = any(o[2] == "syncfs" for o in later)
        kind = op[0]
        if kind in ("write", "truncate"):
            own = index + 1 < upto and ops[index + 1][:3] == ("sync", op[1], "O_DSYNC write")
            flags.append(everything or own or any(o[1] == op[1] and o[2] != "O_DSYNC write" for o in later) or None)
        elif kind in ("create", "rename", "exchange", "unlink", "mkdir"):
            directory = os.path.dirname(op[-1] if kind in ("rename", "exchange") else op[1])
            flags.append(everything or any(o[1] == directory and o[2] == "fsync" for o in later) or None)
        else:
            flags.append(True)   # a sync itself changes nothing
    return flags


def in_place(base, ops):
    """The indices of writes over bytes their file already had (only their second half there is
    then a mix too; elsewhere it is a hole before a fragment, which the first half covers)."""
    live, found = Model(*base), set()   # noqa: the live model is written as the calls were
    for index, op in enumerate(ops):
        if op[0] == "write":
            number = live.inode(op[1])
            if number is not None and op[2] is not None and op[2] < len(live.inodes.get(number, b"")):
                found.add(index)
        apply(live, op, 1, None)
    return found


def crash_states(base, ops, upto):
    """Every state a power cut after `upto` operations may leave (each a Model)."""
    flags = durable_flags(ops, upto)
    optional = [i for i, f in enumerate(flags) if f is None]
    # Each optional op: absent, present, and for writes also torn (only the first half there, or
    # only the second: over a file's old bytes, as an in-place rewrite leaves them, either is a
    # mix of old and new).
    overwrites = in_place(base, ops)
    choices = [((0, 1, 2, 3) if i in overwrites else (0, 1, 2)) if ops[i][0] == "write" and len(ops[i][3]) > 1 else (0, 1)
               for i in optional]
    for combination in itertools.product(*choices):
        chosen = dict(zip(optional, combination))
        model = Model(*base)
        # A file's identity follows its inode: a write goes to the inode its path named when
        # the call was made (the real call order), whether or not the name change persisted.
        live = Model(*base)
        for index, op in enumerate(ops[:upto]):
            mode = 1 if flags[index] else chosen.get(index, 1)
            target_live = live.inode(op[1]) if op[0] in ("write", "truncate") else None
            apply(live, op, 1, None)
            if op[0] == "create":
                # The same inode number as in the live run, whether or not earlier creates
                # persisted, so later writes (addressed by the live inode) hit the right file.
                target_live = live.inode(op[1])
            if mode:
                apply(model, op, mode, target_live)
        yield model


def is_head(path):
    """The commit log's head (its lock file's text): never synced, and after a power cut ignored,
    its boot being an earlier one (materialize): states that differ only there read the same."""
    return path.endswith("/.locks/commit.lock")


def is_temp(path):
    name = os.path.basename(path)
    return name.startswith(".") and name.endswith(".tmp")


def distinct_states(base, ops, phase):
    """(crash point, state) for every crash point, each state once per `phase(crash point)` (what
    the judgement depends on besides the files: whether the command has returned)."""
    seen = set()
    for upto in range(len(ops) + 1):
        for model in crash_states(base, ops, upto):
            # Temp files and the view's spare are never read (docs/FORMAT.md; a writer that
            # reuses the spare overwrites it whole): states that differ only there are one.
            key = (tuple(sorted((p, hashlib.blake2b(bytes(model.inodes.get(n, b""))).digest()) for p, n in model.names.items()
                                if os.path.dirname(p) in model.dirs and not is_temp(p) and not is_head(p))), phase(upto))
            if key not in seen:
                seen.add(key)
                yield upto, model


SECTOR = 512


def apply(model, op, mode, inode):
    kind = op[0]
    if kind == "create":
        if op[1] not in model.names:
            number = inode if inode is not None else model.next
            model.inodes.setdefault(number, bytearray())
            model.names[op[1]] = number
            model.next = max(model.next, number + 1)
    elif kind == "mkdir":
        model.dirs.add(op[1])
    elif kind == "unlink":
        model.names.pop(op[1], None)
    elif kind == "rename":
        if op[1] in model.names:
            model.names[op[2]] = model.names.pop(op[1])
    elif kind == "exchange":
        if op[1] in model.names and op[2] in model.names:
            model.names[op[1]], model.names[op[2]] = model.names[op[2]], model.names[op[1]]
        elif op[1] in model.names:
            model.names[op[2]] = model.names.pop(op[1])
    elif kind in ("write", "truncate"):
        number = inode if inode is not None else model.inode(op[1])
        if number is None or number not in model.inodes:
            if number is None:
                return
            model.inodes[number] = bytearray()
        data = model.inodes[number]
        if not isinstance(data, bytearray):
            data = model.inodes[number] = bytearray(data)
        if kind == "truncate":
            del data[op[2]:]
        else:
            offset = len(data) if op[2] is None else op[2]
            # Torn at its first sector boundary (512 bytes) when it spans one, else in the middle.
            split = -offset % SECTOR or SECTOR
            split = split if split < len(op[3]) else len(op[3]) // 2
            payload = op[3] if mode == 1 else op[3][:split] if mode == 2 else op[3][split:]
            if mode == 3:
                offset += split
            if len(data) < offset:
                data.extend(b"\0" * (offset - len(data)))
            data[offset:offset + len(payload)] = payload


# Set for one check: state files are written out without their view_crc32, as a reader that
# does not check it sees them (the check must then find wrong states, or it is not needed).
UNCHECKED = False
CHECK_HEAD = re.compile(rb'^\{"view_crc32": "[0-9a-f]{8}",')


# The boot a power cut leaves behind, recorded where the commit log's lock file keeps its boot id.
OLD_BOOT = b"00000000-0000-0000-0000-000000000000"


def materialize(model, root, where, reboot=True):
    """Writes the model's files out at `where`. With `reboot` (a power cut), the boot the commit
    log's lock file records is an earlier one, as after any restart."""
    if os.path.exists(where):
        shutil.rmtree(where)
    for directory in sorted(model.dirs):
        os.makedirs(where + directory[len(root):], exist_ok=True)
    for path, number in model.names.items():
        # A file whose directory's creation did not persist is gone with it.
        if number in model.inodes and os.path.dirname(path) in model.dirs:
            target = where + path[len(root):]
            os.makedirs(os.path.dirname(target), exist_ok=True)
            data = bytes(model.inodes[number])
            if UNCHECKED and path.endswith(".json"):
                data = CHECK_HEAD.sub(b"{", data)
            if reboot and path.endswith("/.locks/commit.lock") and len(data) >= len(OLD_BOOT):
                data = OLD_BOOT + data[len(OLD_BOOT):]
            with open(target, "wb") as f:
                f.write(data)


def lengths(known):
    return known["history_length"] if isinstance(known, dict) else known


def each_state(states, root, label, judge_state):
    """Runs `judge_state(upto, where)` for each (upto, model) of `states`, the model written out
    at `where`, on every core (each worker its own directory). Returns (count, wrong), wrong in
    crash-point order."""
    local = threading.local()
    kept = threading.Lock()
    scratches = []

    def one(item):
        upto, model = item
        if not hasattr(local, "where"):
            local.where = os.path.join(tempfile.mkdtemp(prefix="crash-"), ".chatflow")
            scratches.append(os.path.dirname(local.where))
        materialize(model, root, local.where)
        problem = judge_state(upto, local.where)
        if problem and KEEP:
            with kept:
                target = os.path.join(KEEP, label.strip().replace(" ", "_"))
                if not os.path.exists(target):
                    shutil.copytree(local.where, target)
        return upto, problem

    items = list(states)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(one, items))
    for scratch in scratches:
        shutil.rmtree(scratch, ignore_errors=True)
    return len(items), [(upto, problem) for upto, problem in results if problem]


def check(base, ops, root, instance, before, after, label):
    """`before` and `after`: the instance's `status --json` before and after the command (any
    state read must be one of them), or only their history lengths."""
    def judge_state(upto, where):
        acknowledged = upto == len(ops)
        # status --json reads the history too (every entry, checked): one reader for both.
        status = run("status", instance, "--json", root=where)
        problem = None
        if status.returncode != 0:
            problem = f"reader failed: {status.stderr.strip()}"
        else:
            doc = json.loads(status.stdout)
            entries = doc["history"]
            length = doc["history_length"]
            if len(entries) != length or entries[-1]["phase"] != doc["current_phase"]:
                problem = f"history disagrees with the state ({len(entries)} entries, history_length {length})"
            elif isinstance(before, dict) and doc not in (before, after):
                problem = f"a state that was never committed (history_length {length}, current_phase {doc['current_phase']})"
            elif length not in (lengths(before), lengths(after)):
                problem = f"history_length {length}, neither {lengths(before)} nor {lengths(after)}"
            elif acknowledged and length != lengths(after):
                problem = "the acknowledged trigger is lost"
        return problem

    states, found = each_state(distinct_states(base, ops, lambda upto: upto == len(ops)), root, label, judge_state)
    wrong = [f"after call {upto} of {len(ops)}: {problem}" for upto, problem in found]
    print(f"{label}: {states} crash states, {len(wrong)} wrong" + (f"; first: {wrong[0]}" if wrong else ""), flush=True)
    return states, wrong


def judge(label, base, ops, root, instance, before, after, last_sync_only=False):
    """Checks the trace as written (0 wrong expected), then with each sync dropped in turn (each
    must be caught). Returns whether all hold."""
    syncs = [op for op in ops if op[0] == "sync"]
    print(f"{label}: {len(ops)} calls on the state directory, {len(syncs)} syncs: "
          + ", ".join(f"{op[2]} {os.path.relpath(op[1], root)}" for op in syncs), flush=True)
    _, wrong = check(base, ops, root, instance, before, after, f"  {label}, the protocol as written")
    teeth = []
    for drop in syncs[-1:] if last_sync_only else syncs:
        weakened = [op for op in ops if op is not drop]
        _, found = check(base, weakened, root, instance, before, after, f"  {label}, without {drop[2]} {os.path.relpath(drop[1], root)}")
        teeth.append(bool(found))
    return not wrong and len(teeth) > 0 and all(teeth)


def new_instance(work):
    """A state directory in `work` with one instance of five phases: (root, instance id)."""
    root = os.path.realpath(work) + "/.chatflow"
    subprocess.run([CHATFLOW, "--root", root, "init"], check=True, capture_output=True)
    instance = subprocess.run([CHATFLOW, "--root", root, "start", "--feature", "f", "--phases", "a,b,c,d,e"],
                              check=True, capture_output=True, text=True).stdout.strip()
    return root, instance


def scenario(label, earlier_triggers, after_power_cut=False):
    """One recorded trigger (after `earlier_triggers` others) and its crash states; and the same
    trace with each sync dropped in turn, each of which must be caught (or that sync is not
    needed, or the check proves nothing). With `after_power_cut`, the recorded trigger starts
    from what a power cut left after the last earlier one: its state file still the one before
    it (its history line durable), so the trigger must first recover. Returns whether all hold."""
    work = tempfile.mkdtemp(prefix="crash-check-")
    try:
        root, instance = new_instance(work)
        view = os.path.join(root, "instances", instance + ".json")
        for number in range(earlier_triggers):
            if after_power_cut and number == earlier_triggers - 1:
                with open(view, "rb") as f:
                    lagging = f.read()
            subprocess.run([CHATFLOW, "--root", root, "trigger", instance], check=True, capture_output=True)
        before = json.loads(run("status", instance, "--json", root=root).stdout)
        if after_power_cut:
            with open(view, "wb") as f:
                f.write(lagging)
        base = snapshot(root)
        ops = record(root, instance)
        after = json.loads(run("status", instance, "--json", root=root).stdout)
        # From a durable base the recovery's own fdatasync has nothing to make durable; what it
        # is for (a line a killed writer left unsynced) is the reader scenario's.
        return judge(label, base, ops, root, instance, before, after, last_sync_only=after_power_cut)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def teeth_of_the_view_check(label, attempts=12):
    """A later trigger rewrites the spare (the view before the last) in place. Read without its
    view_crc32, some state a power cut leaves must be read wrong: a mix of the two views, torn at
    a sector, that is valid JSON (their texts align when their timestamps have as many digits,
    which some attempt will have); read with it, none. Returns whether both hold."""
    global UNCHECKED
    for attempt in range(1, attempts + 1):
        work = tempfile.mkdtemp(prefix="crash-check-")
        try:
            root = os.path.realpath(work) + "/.chatflow"
            subprocess.run([CHATFLOW, "--root", root, "init"], check=True, capture_output=True)
            # A meta long enough that the first sector ends inside it: the members before it
            # (current entry and phase, history length) and after it (previous phase, status,
            # variables) then come from different views.
            meta = json.dumps({"note": "x" * 300})
            instance = subprocess.run([CHATFLOW, "--root", root, "start", "--feature", "f", "--phases", "a,b,c,d,e,f,g",
                                       "--meta", meta], check=True, capture_output=True, text=True).stdout.strip()
            # Three earlier triggers, so the spare's history_bytes has as many digits as the new
            # view's; trigger data of one size, so the variables are as long in both.
            for step in range(1, 4):
                subprocess.run([CHATFLOW, "--root", root, "trigger", instance, "--data", json.dumps({"step": step})],
                               check=True, capture_output=True)
            before = json.loads(run("status", instance, "--json", root=root).stdout)
            base = snapshot(root)
            ops = record(root, instance, "trigger", instance, "--data", json.dumps({"step": 4}))
            after = json.loads(run("status", instance, "--json", root=root).stdout)
            UNCHECKED = True
            try:
                _, wrong = check(base, ops, root, instance, before, after, f"  {label}, attempt {attempt}")
            finally:
                UNCHECKED = False
            if wrong:
                # The same states read as written (checked): none wrong.
                _, checked = check(base, ops, root, instance, before, after, f"  {label.replace(' without ', ' with ')}, attempt {attempt}")
                return not checked
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{label}: no wrong state in {attempts} attempts: the check proves nothing here", flush=True)
    return False


def reader_after_killed_writer(label):
    """A trigger killed after writing its history line but before its fdatasync, then a reader
    (`chatflow status`), which finds the state file behind the history and recovers. What the
    reader showed counts as acknowledged: it must survive a power cut after the reader returns
    (which is what the reader's own fdatasync is for). Dropping each sync must be caught."""
    work = tempfile.mkdtemp(prefix="crash-check-")
    try:
        root, instance = new_instance(work)
        subprocess.run([CHATFLOW, "--root", root, "trigger", instance], check=True, capture_output=True)
        before = json.loads(run("status", instance, "--json", root=root).stdout)["history_length"]
        base = snapshot(root)
        trigger = record(root, instance)
        cut = next(i for i, op in enumerate(trigger) if op[0] == "sync")
        killed = Model(*base)
        for op in trigger[:cut]:
            apply(killed, op, 1, None)
        # Killed, not a power cut: the same boot, the page cache kept.
        materialize(killed, root, root, reboot=False)
        shown = json.loads(run("status", instance, "--json", root=root).stdout)["history_length"]
        materialize(killed, root, root, reboot=False)
        ops = trigger[:cut] + record(root, instance, "status", instance, "--json")
        after = before + 1
        if shown != after:
            print(f"{label}: the reader showed history_length {shown}, not the killed trigger's {after}", flush=True)
            return False
        return judge(label, base, ops, root, instance, before, after)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replay_scenario(label):
    """A power cut after an acknowledged trigger took its history line and its view (neither is
    synced; the commit log's record is), then a reader in the new boot (`chatflow status`),
    which replays the log. Every crash state of the reader's own calls must still read the
    trigger. And the teeth: the same base with the log's record gone (a protocol without the log)
    must read the trigger lost."""
    work = tempfile.mkdtemp(prefix="crash-check-")
    try:
        root, instance = new_instance(work)
        subprocess.run([CHATFLOW, "--root", root, "trigger", instance], check=True, capture_output=True)
        history = os.path.join(root, "instances", instance, "history.ndjson")
        view = os.path.join(root, "instances", instance + ".json")
        cut_at = os.path.getsize(history)
        with open(view, "rb") as f:
            old_view = f.read()
        with open(os.path.join(root, "commit.log"), "rb") as f:
            log_before = f.read()
        subprocess.run([CHATFLOW, "--root", root, "trigger", instance, "--data", '{"n": 2}'], check=True, capture_output=True)
        after = json.loads(run("status", instance, "--json", root=root).stdout)

        def cut(forget_record):
            os.truncate(history, cut_at)
            with open(view, "wb") as f:
                f.write(old_view)
            if forget_record:
                with open(os.path.join(root, "commit.log"), "wb") as f:
                    f.write(log_before)
            lock = os.path.join(root, ".locks", "commit.lock")
            with open(lock, "r+b") as f:
                f.write(OLD_BOOT)

        cut(forget_record=False)
        base = snapshot(root)
        ops = record(root, instance, "status", instance, "--json")
        print(f"{label}: {len(ops)} calls on the state directory, "
              f"{sum(1 for op in ops if op[0] == 'sync')} syncs", flush=True)
        _, wrong = check(base, ops, root, instance, after, after, f"  {label}, the protocol as written")
        for path, data in base[0].items():
            with open(path, "wb") as f:
                f.write(data)
        cut(forget_record=True)
        _, lost = check(snapshot(root), [], root, instance, after, after, f"  {label}, without the log's record")
        return not wrong and bool(lost)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lap_scenario(label):
    """A trigger whose record does not fit before the log's end, so it ends the lap: `syncfs`,
    a new header, the record at the ring's start, over the lap's first record; then the next
    trigger, as one trace. The history line of the lap's first record is given as still
    unsynced (a write just before the trace, as the page cache would hold it: zeros on disk
    until then), so that a lap ended without its syncfs loses a commit the log no longer holds;
    and the next trigger's commit is only in the new lap, which its replay finds only through
    the new header and the first record. Every crash state reads as before, between or after
    the two (the first once it returned, the second once it returned); dropping each sync must
    be caught."""
    work = tempfile.mkdtemp(prefix="crash-check-")
    try:
        root, instance = new_instance(work)
        log = os.path.join(root, "commit.log")
        head = os.path.join(root, ".locks", "commit.lock")
        step = 0
        while True:
            subprocess.run([CHATFLOW, "--root", root, "trigger", instance, "--to", "bc"[step % 2]], check=True, capture_output=True)
            step += 1
            with open(head, "rb") as f:
                offset = int(f.read()[58:78])
            if offset + 1024 > os.path.getsize(log):
                break
        with open(log, "rb") as f:
            f.seek(4096)
            first = f.read(1024)
        fields = first[14:first.index(b"\n")].split(b" ")
        at, length = int(fields[2]), int(fields[3])
        lines = first[first.index(b"\n") + 1:][:length]
        history = os.path.join(root, "instances", instance, "history.ndjson")
        before = json.loads(run("status", instance, "--json", root=root).stdout)
        base = snapshot(root)
        data = bytearray(base[0][history])
        data[at:at + length] = bytes(length)
        base[0][history] = bytes(data)
        first_trigger = [("write", history, at, lines)] + record(root, instance, "trigger", instance, "--to", "bc"[step % 2])
        if not any(op[0] == "sync" and op[2] == "syncfs" for op in first_trigger):
            print(f"{label}: the recorded trigger did not end the lap", flush=True)
            return False
        middle = json.loads(run("status", instance, "--json", root=root).stdout)
        ops = first_trigger + record(root, instance, "trigger", instance, "--to", "bc"[(step + 1) % 2])
        after = json.loads(run("status", instance, "--json", root=root).stdout)

        def judge_state(upto, where, first_returned, total):
            status = run("status", instance, "--json", root=where)
            if status.returncode != 0:
                return f"reader failed: {status.stderr.strip()}"
            doc = json.loads(status.stdout)
            if doc not in (before, middle, after):
                return f"a state that was never committed (history_length {doc['history_length']})"
            if upto == total and doc != after:
                return "the second, acknowledged trigger is lost"
            if upto >= first_returned and doc == before:
                return "the first, acknowledged trigger is lost"
            return None

        return judge_two_commands(label, base, ops, first_trigger, root, judge_state)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def judge_two_commands(label, base, ops, first, root, judge_state):
    """Checks a trace of two commands (`first`: the first one's calls) as written and with each
    sync dropped in turn, as `judge` does; `judge_state(upto, where, first_returned, total)`
    says what is wrong with one crash state. Returns whether all hold."""
    def verify(ops, name):
        first_returned = sum(1 for op in ops if any(op is o for o in first))
        states, found = each_state(distinct_states(base, ops, lambda upto: (upto >= first_returned, upto == len(ops))),
                                   root, name, lambda upto, where: judge_state(upto, where, first_returned, len(ops)))
        wrong = [f"after call {upto} of {len(ops)}: {problem}" for upto, problem in found]
        print(f"  {name}: {states} crash states, {len(wrong)} wrong" + (f"; first: {wrong[0]}" if wrong else ""), flush=True)
        return wrong

    syncs = [op for op in ops if op[0] == "sync"]
    print(f"{label}: {len(ops)} calls on the state directory, {len(syncs)} syncs: "
          + ", ".join(f"{op[2]} {os.path.relpath(op[1], root)}" for op in syncs), flush=True)
    wrong = verify(ops, f"{label}, the protocol as written")
    teeth = [bool(verify([op for op in ops if op is not drop], f"{label}, without {drop[2]} {os.path.relpath(drop[1], root)}"))
             for drop in syncs]
    return not wrong and len(teeth) > 0 and all(teeth)


def start_scenario(label):
    """A `chatflow start`, then a first trigger, as one trace, and its crash states: each reads
    as no instance (not found), the instance as started (counted in its feature), or after the
    trigger, never torn; once start has returned the instance is there, and once the trigger has
    returned, the trigger. (The trigger's state file is not synced, so a power cut may take it;
    then the instance's start.json serves: its syncs belong to start.) Dropping each sync of the
    start must be caught, and the trigger's."""
    work = tempfile.mkdtemp(prefix="crash-check-")
    root = os.path.realpath(work) + "/.chatflow"
    try:
        subprocess.run([CHATFLOW, "--root", root, "init"], check=True, capture_output=True)
        # An earlier instance of the feature, so the link already exists as it usually does.
        subprocess.run([CHATFLOW, "--root", root, "start", "--feature", "f", "--phases", "a,b"], check=True, capture_output=True)
        known = set(os.listdir(os.path.join(root, "instances")))
        base = snapshot(root)
        started = record(root, None, "start", "--feature", "f", "--phases", "a,b,c")
        instance = next(n[:-5] for n in os.listdir(os.path.join(root, "instances")) if n not in known and n.endswith(".json"))
        ops = started + record(root, instance)

        def judge_state(upto, where, start_returned, total):
            status = run("status", instance, "--json", root=where)
            problem = None
            if status.returncode == 3:
                if upto >= start_returned:
                    problem = "the started instance is lost"
            elif status.returncode != 0:
                problem = f"reader failed: {status.stderr.strip()}"
            else:
                doc = json.loads(status.stdout)
                length = doc["history_length"]
                feature = run("feature", "f", "--json", root=where)
                if length not in (1, 2) or len(doc["history"]) != length:
                    problem = f"torn: {length} entries, {len(doc['history'])} in the history"
                elif upto == total and length != 2:
                    problem = "the acknowledged trigger is lost"
                elif feature.returncode != 0 or json.loads(feature.stdout)["total_instances"] != 2:
                    problem = f"the instance is missing from its feature: {feature.stdout.strip() or feature.stderr.strip()}"
            return problem

        return judge_two_commands(label, base, ops, started, root, judge_state)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    results = [start_scenario("a start"), scenario("a first trigger", 0), scenario("a later trigger", 2),
               scenario("a trigger after a power cut", 2, after_power_cut=True),
               reader_after_killed_writer("a reader after a killed writer"),
               replay_scenario("a reader replaying the commit log after a power cut"),
               lap_scenario("a trigger that ends the commit log's lap"),
               teeth_of_the_view_check("a later trigger read without view_crc32")]
    ok = all(results)
    print("crash check passed" if ok else "crash check FAILED", flush=True)
    sys.exit(0 if ok else 1)


main()
