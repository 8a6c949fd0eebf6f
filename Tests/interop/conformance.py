"""One operation, three surfaces: the command (`--json`), the MCP server (the Python `mcp` client,
written by others) and the web view's `/api/`. Every operation that exists on more than one surface
is called on each with the same arguments; the documents, and for bad input the error codes, must
be the same.

usage: conformance.py BIN_DIR WORK_DIR

Read-only operations are called on one unchanging state and compared as they are. A write is
called once per surface, each on an instance of its own in the same state, and the documents are
compared with what must differ between them (ids, tokens, times, paths) blanked. Every check
raises on failure; on success it prints one line per check and `all checks passed` last.
"""

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from processes import started

warnings.filterwarnings("ignore", message="resources/subscribe")
BIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.join(WORK, ".chatflow")
TOKEN = "conformance-token-0123456789"
checked = []


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    checked.append(name)
    print("ok:", name, flush=True)


def run(argv, label, expect_error):
    """A `chatflow` process: its JSON document on stdout, or (expect_error) its error object on stderr."""
    done = subprocess.run([os.path.join(BIN, "chatflow"), "--root", ROOT, *argv], capture_output=True, text=True)
    if expect_error:
        if done.returncode == 0:
            raise AssertionError(f"{label} succeeded: {done.stdout}")
        return json.loads(done.stderr.strip().splitlines()[-1])["error"]
    if done.returncode != 0:
        raise AssertionError(f"{label} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def command(*args, expect_error=False):
    """`chatflow ARGS --json`: the typed subcommand."""
    return run([*args, "--json"], f"chatflow {' '.join(args)}", expect_error)


def call(name, arguments, expect_error=False):
    """`chatflow call NAME JSON`: the operation by name, its whole document."""
    return run(["call", name, json.dumps(arguments)], f"chatflow call {name}", expect_error)


class Web:
    def __init__(self, base):
        self.base = base

    def request(self, path, body=None):
        headers = {"X-ChatFlow-Token": TOKEN}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base + path, headers=headers, data=data,
                                                               method="POST" if body is not None else "GET"), timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def call(self, name, arguments, read_only, expect_error=False):
        """`/api/call/NAME`: GET with query arguments for a read, POST with a JSON body for a write."""
        if read_only:
            query = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()})
            status, body = self.request(f"/api/call/{name}?{query}")
        else:
            status, body = self.request(f"/api/call/{name}", arguments)
        if expect_error:
            if status < 400:
                raise AssertionError(f"/api/call/{name} succeeded: {body}")
            return body["error"]
        if status != 200:
            raise AssertionError(f"/api/call/{name} answered {status}: {body}")
        return body


def blank(document):
    """The document with what differs between two instances blanked: ids, tokens, times, paths."""
    text = json.dumps(document, sort_keys=True)
    text = re.sub(r"wfi_[0-9a-f]{12}", "wfi_ID", text)
    text = re.sub(r'"token": "[^"]*"', '"token": "T"', text)
    text = re.sub(r'"([a-z_]*_at|elapsed)": [0-9.e+-]+', r'"\1": 0', text)
    text = re.sub(r'"history_bytes": [0-9]+', '"history_bytes": 0', text)
    return json.loads(text)


def differences(a, b, at=""):
    """Where two documents differ, for a failure's message."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{at}.{k}")]
    if a != b:
        return [f"{at}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]
    return []


def setup():
    """A state that no call below changes: instances in known phases, a hook run, artifacts."""
    os.makedirs(ROOT + "/hooks")
    for folder in (ROOT, ROOT + "/hooks"):
        os.chmod(folder, 0o755)
    subprocess.run([os.path.join(BIN, "chatflow"), "--root", ROOT, "init"], check=True, capture_output=True)
    hook = os.path.join(ROOT, "hooks", "review")
    with open(hook, "w") as f:
        f.write('#!/bin/sh\necho "reviewing $CHATFLOW_INSTANCE_ID"\n')
    os.chmod(hook, 0o755)
    watcher, _ = started([os.path.join(BIN, "chatflow-watch"), "--root", ROOT, "--shutdown-grace", "1"], "watching")
    try:
        main = call("start", {"feature": "login", "phases": ["code", "review", "done"], "context": {"ticket": 7}})["instance_id"]
        call("trigger", {"id": main, "data": {"pr": 12}})
        call("save_artifact", {"id": main, "name": "notes.md", "text": "# notes\n"})
        call("save_artifact", {"id": main, "name": "blob.bin", "base64": "AAEC/w=="})
        call("wait", {"id": main, "phase": "review"})
        # The review hook's run, ended, before the watcher stops.
        for _ in range(400):
            runs = call("runs", {"id": main})["runs"]
            if any(r.get("exit_code") == 0 for r in runs):
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("the review hook did not run")
    finally:
        watcher.terminate()
        watcher.wait(10)
    return main


def fresh(count=3, phases=("code", "review", "done")):
    """`count` instances in the same state, one per surface."""
    return [call("start", {"feature": "writes", "phases": list(phases)})["instance_id"] for _ in range(count)]


async def main():
    main_id = setup()
    ui, line = started([os.path.join(BIN, "chatflow-ui"), "--root", ROOT, "--port", "0", "--actions", "--token-file",
                        os.path.join(WORK, "token")], "serving")
    web = Web(line.split(" on ", 1)[1].split("/?")[0].strip())
    params = StdioServerParameters(command=os.path.join(BIN, "chatflow-mcp"), args=["--root", ROOT])
    try:
        async with stdio_client(params, errlog=open(os.path.join(WORK, "server.log"), "w")) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await checks(session, web, main_id)
    finally:
        ui.terminate()
        ui.wait(10)
    print("all checks passed", flush=True)


async def checks(session, web, main_id):
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    catalogue = {entry["name"]: entry for entry in command_list()}
    check("the MCP tools are the catalogue's operations", set(tools) == set(catalogue), sorted(set(tools) ^ set(catalogue)))
    for name, entry in catalogue.items():
        check(f"{name}: the tool's input schema is the catalogue's", tools[name].input_schema == entry["input_schema"])
        # Known to the web view: a call with an unknown argument is refused by the operation, not as an unknown route.
        code = web.call(name, {"no_such_argument": 1}, entry["read_only"], expect_error=True)["code"]
        check(f"{name}: /api/call knows it", code == "invalid_input", code)

    async def mcp(name, arguments, expect_error=False):
        result = await session.call_tool(name, arguments)
        if expect_error:
            check(f"{name}: an MCP error is a tool error", result.is_error, repr(result))
            return result.structured_content["error"]
        if result.is_error:
            raise AssertionError(f"MCP {name} failed: {result.structured_content}")
        return result.structured_content

    # Reads: one state, every surface, the same document. `typed` is the command's own subcommand;
    # `listing` the member it prints as a bare array (as the REST route does).
    reads = [
        ("status", {"id": main_id}, ["status", main_id], None, f"/api/instances/{main_id}"),
        ("feature", {"feature": "login"}, ["feature", "login"], None, None),
        ("list", {"feature": "login"}, ["list", "--feature", "login"], "instances", "/api/instances?feature=login"),
        ("list", {"status": "running", "phase": "review"}, ["list", "--status", "running", "--phase", "review"], "instances",
         "/api/instances?status=running&phase=review"),
        ("history", {"id": main_id}, ["history", main_id], "history", f"/api/instances/{main_id}/history"),
        ("runs", {"id": main_id}, ["runs", main_id], "runs", f"/api/instances/{main_id}/runs"),
        ("logs", {"id": main_id}, ["logs", main_id], None, None),
        ("artifacts", {"id": main_id}, ["artifacts", main_id], "artifacts", f"/api/instances/{main_id}/artifacts"),
        ("artifact", {"id": main_id, "name": "notes.md"}, ["artifact", main_id, "notes.md"], None, None),
        ("artifact", {"id": main_id, "name": "blob.bin"}, ["artifact", main_id, "blob.bin"], None, None),
        ("wait", {"id": main_id, "phase": "review"}, ["wait", main_id, "--phase", "review"], None, None),
        ("wait", {"phase": "review", "feature": "login"}, ["wait", "--phase", "review", "--feature", "login"], None, None),
    ]
    for name, arguments, typed, listing, rest in reads:
        label = f"{name} {json.dumps(arguments)}"
        document = await mcp(name, arguments)
        check(f"{label}: chatflow call = MCP", call(name, arguments) == document)
        check(f"{label}: /api/call = MCP", web.call(name, arguments, True) == document)
        printed = document[listing] if listing else document
        check(f"{label}: chatflow {typed[0]} --json = MCP" + (f"'s {listing}" if listing else ""), command(*typed) == printed,
              f"{command(*typed)} != {printed}")
        if rest:
            status, body = web.request(rest)
            check(f"{label}: GET {rest.split('?')[0]} = MCP" + (f"'s {listing}" if listing else ""), status == 200 and body == printed)

    # Writes: each surface on its own instance in the same state.
    async def writes(name, make, typed, arguments_of, rest=None, blanked=blank):
        ids = make()
        got = [
            call(name, arguments_of(ids[0])),
            await mcp(name, arguments_of(ids[1])),
            web.call(name, arguments_of(ids[2]), False),
        ]
        check(f"{name}: chatflow call, MCP and /api/call give the same document", blanked(got[0]) == blanked(got[1]) == blanked(got[2]),
              differences(blanked(got[0]), blanked(got[1])) + differences(blanked(got[0]), blanked(got[2])))
        if typed:
            more = make()
            check(f"{name}: chatflow {typed(more[0])[0]} --json gives it too", blanked(command(*typed(more[0]))) == blanked(got[0]))
            if rest:
                path, body = rest(more[1])
                status, answer = web.request(path, body)
                check(f"{name}: POST {re.sub('wfi_[0-9a-f]+', 'ID', path)} gives it too", status == 200 and blanked(answer) == blanked(got[0]),
                      json.dumps(answer))
        return got

    await writes("start", lambda: [None] * 3, lambda _: ["start", "--feature", "writes", "--phases", "code,review,done"],
                 lambda _: {"feature": "writes", "phases": ["code", "review", "done"]})
    # A trigger from the web view records where it came from: compared without that member.
    def without_ui_meta(document):
        document = dict(document)
        document["meta"] = {k: v for k, v in document.get("meta", {}).items() if k != "triggered_by"}
        return blank(document)
    await writes("trigger", fresh, lambda i: ["trigger", i, "--data", '{"pr": 3}', "--expect-transition", "0"],
                 lambda i: {"id": i, "data": {"pr": 3}, "expect_transition": 0},
                 rest=lambda i: (f"/api/instances/{i}/trigger", {"data": {"pr": 3}, "expect_transition": 0}), blanked=without_ui_meta)
    await writes("fail", fresh, lambda i: ["fail", i, "--reason", "flaky"], lambda i: {"id": i, "reason": "flaky"})

    grants = await writes("claim", lambda: fresh(phases=("only-here",)), lambda _: ["claim", "--phase", "only-here", "--as", "agent"],
                          lambda _: {"phase": "only-here", "as": "agent"})
    tokens = {g["instance_id"]: g["token"] for g in grants}
    check("three claims took three instances", len(tokens) == 3, json.dumps(grants))
    ids = sorted(tokens)
    got = [call("heartbeat", {"id": ids[0], "token": tokens[ids[0]], "ttl": 600}),
           await mcp("heartbeat", {"id": ids[1], "token": tokens[ids[1]], "ttl": 600}),
           web.call("heartbeat", {"id": ids[2], "token": tokens[ids[2]], "ttl": 600}, False)]
    check("heartbeat: the same document on the three", blank(got[0]) == blank(got[1]) == blank(got[2]), json.dumps(got))
    check("chatflow heartbeat --json too",
          blank(command("heartbeat", ids[0], "--token", tokens[ids[0]], "--ttl", "600")) == blank(got[0]))
    got = [call("release", {"id": ids[0], "token": tokens[ids[0]]}), await mcp("release", {"id": ids[1], "token": tokens[ids[1]]}),
           web.call("release", {"id": ids[2], "token": tokens[ids[2]]}, False)]
    check("release: the same document on the three", blank(got[0]) == blank(got[1]) == blank(got[2]), json.dumps(got))
    await writes("save_artifact", fresh, None, lambda i: {"id": i, "name": "a.txt", "text": "x"},
                 blanked=lambda d: {**blank(d), "path": os.path.basename(d["path"])})
    await writes("rerun", fresh, lambda i: ["rerun", i], lambda i: {"id": i}, rest=lambda i: (f"/api/instances/{i}/rerun", {}))

    # Errors: the same code on every surface (and the command's typed form).
    missing = "wfi_00000000dead"
    errors = [
        ("status", {"id": missing}, False, ["status", missing], "not_found"),
        ("status", {"id": "../etc"}, False, ["status", "../etc"], "invalid_input"),
        ("feature", {"feature": "nothing-here"}, False, ["feature", "nothing-here"], "not_found"),
        ("list", {"status": "sleeping"}, False, ["list", "--status", "sleeping"], "invalid_input"),
        ("history", {"id": missing}, False, ["history", missing], "not_found"),
        ("trigger", {"id": main_id, "expect_transition": 0}, True, ["trigger", main_id, "--expect-transition", "0"], "conflict"),
        ("trigger", {"id": main_id, "to": "nowhere"}, True, ["trigger", main_id, "--to", "nowhere"], "invalid_input"),
        ("fail", {"id": missing}, True, ["fail", missing], "not_found"),
        ("wait", {"id": main_id, "phase": "reveiw"}, False, ["wait", main_id, "--phase", "reveiw"], "invalid_input"),
        ("wait", {"id": main_id, "phase": "code", "timeout_seconds": 0.2}, False,
         ["wait", main_id, "--phase", "code", "--timeout", "0.2"], "timeout"),
        ("claim", {"phase": "done", "as": "x"}, True, ["claim", "--phase", "done", "--as", "x"], "not_found"),
        ("heartbeat", {"id": main_id, "token": "wrong"}, True, ["heartbeat", main_id, "--token", "wrong"], "conflict"),
        ("release", {"id": main_id, "token": "wrong"}, True, ["release", main_id, "--token", "wrong"], "conflict"),
        ("runs", {"id": missing}, False, ["runs", missing], "not_found"),
        ("logs", {"id": main_id, "hook": "deploy"}, False, ["logs", main_id, "--hook", "deploy"], "not_found"),
        ("artifacts", {"id": missing}, False, ["artifacts", missing], "not_found"),
        ("artifact", {"id": main_id, "name": "none.txt"}, False, ["artifact", main_id, "none.txt"], "not_found"),
        ("rerun", {"id": main_id, "hook": "deploy"}, True, ["rerun", main_id, "--hook", "deploy"], "invalid_input"),
        ("start", {"feature": "x", "phases": []}, True, ["start", "--feature", "x", "--phases", ""], "invalid_input"),
    ]
    for name, arguments, writes_, typed, code in errors:
        label = f"{name} {json.dumps(arguments)}"
        codes = {
            "chatflow call": call(name, arguments, expect_error=True)["code"],
            "MCP": (await mcp(name, arguments, expect_error=True))["code"],
            "/api/call": web.call(name, arguments, not writes_ and catalogue[name]["read_only"], expect_error=True)["code"],
            f"chatflow {typed[0]}": command(*typed, expect_error=True)["code"],
        }
        check(f"{label}: error code {code} on every surface", set(codes.values()) == {code}, json.dumps(codes))
    check("every operation on more than one surface was compared",
          set(catalogue) <= {r[0] for r in reads} | {"start", "trigger", "fail", "claim", "heartbeat", "release", "save_artifact", "rerun"})


def command_list():
    done = subprocess.run([os.path.join(BIN, "chatflow"), "--root", ROOT, "call", "--list"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


if __name__ == "__main__":
    with open(os.path.join(WORK, "token"), "w") as f:
        f.write(TOKEN + "\n")
    anyio.run(main)
