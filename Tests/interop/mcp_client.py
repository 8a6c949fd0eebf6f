"""Drives chatflow-mcp with the Python MCP SDK (PyPI `mcp`, 2.3.x), a client written by others.

usage: mcp_client.py BIN_DIR WORK_DIR

BIN_DIR holds chatflow, chatflow-mcp and chatflow-watch; WORK_DIR is an empty directory. With
$CHATFLOW_STORE set (a postgres:// URL), all three use that store, as every process of a
host would. Every
check raises on failure (exit 1, the reason on stderr); on success it prints one line per check and
`all checks passed` last.
"""

import json
import os
import subprocess
import sys
import threading
import time
import warnings

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# subscribe is deprecated for protocol 2026-07-28; this server negotiates 2025-11-25, where it is current.
warnings.filterwarnings("ignore", message="resources/subscribe")
BIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.join(WORK, ".chatflow")
TOOLS = {
    "start", "trigger", "fail", "status", "feature", "list", "history", "wait", "claim", "heartbeat",
    "release", "runs", "logs", "rerun", "artifacts", "artifact", "save_artifact",
}
checked = []


def chatflow(*args):
    """The command, as another process (another agent) runs it."""
    done = subprocess.run([os.path.join(BIN, "chatflow"), "--root", ROOT, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"chatflow {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    checked.append(name)
    print("ok:", name, flush=True)


async def call(session, tool, **arguments):
    result = await session.call_tool(tool, arguments)
    check(f"{tool} returns structured content and text", result.structured_content is not None and result.content
          and result.content[0].text, repr(result))
    return result


async def ok(session, tool, **arguments):
    result = await call(session, tool, **arguments)
    check(f"{tool} succeeds", not result.is_error, json.dumps(result.structured_content))
    return result.structured_content


async def error(session, tool, code, **arguments):
    result = await call(session, tool, **arguments)
    got = (result.structured_content or {}).get("error", {})
    check(f"{tool} with bad input is a tool error with code {code}", result.is_error and got.get("code") == code,
          json.dumps(result.structured_content))
    return got


async def main():
    os.makedirs(ROOT + "/hooks")
    # The watcher trusts only hook folders no one else may write: whatever the caller's umask.
    for folder in (ROOT, ROOT + "/hooks"):
        os.chmod(folder, 0o755)
    chatflow("init")
    # A hook for the review phase, so runs and logs have a real run to show.
    hook = os.path.join(ROOT, "hooks", "review")
    with open(hook, "w") as f:
        f.write('#!/bin/sh\necho "reviewing $CHATFLOW_INSTANCE_ID"\n')
    os.chmod(hook, 0o755)
    watcher = subprocess.Popen([os.path.join(BIN, "chatflow-watch"), "--root", ROOT], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or "watching" not in lines[-1]:
            lines.append(watcher.stderr.readline())
            if not lines[-1]:
                raise AssertionError(f"the watcher ended before it was armed: {lines}")
        check("the watcher is armed", True)
        # Drained, so that its log lines never fill the pipe and stall it.
        threading.Thread(target=watcher.stderr.read, daemon=True).start()
        await session_checks()
    finally:
        watcher.terminate()
        watcher.wait(10)


async def session_checks():
    notifications = []
    updated = anyio.Event()

    async def on_message(message):
        if isinstance(message, Exception):
            return
        root = getattr(message, "root", message)
        if getattr(root, "method", "") == "notifications/resources/updated":
            notifications.append(root.params.uri)
            updated.set()

    # The SDK starts servers with a minimal environment, so the store is passed as an option.
    store = ["--store", os.environ["CHATFLOW_STORE"]] if os.environ.get("CHATFLOW_STORE") else []
    params = StdioServerParameters(command=os.path.join(BIN, "chatflow-mcp"), args=["--root", ROOT, "--log-level", "debug", *store])
    server_log = open(os.path.join(WORK, "server.log"), "w+")
    async with stdio_client(params, errlog=server_log) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            # 1. initialize and list the tools.
            init = await session.initialize()
            check("initialize names the server", init.server_info.name == "chatflow", repr(init.server_info))
            listed = await session.list_tools()
            names = {tool.name for tool in listed.tools}
            check("every tool is listed", names == TOOLS, f"{sorted(names ^ TOOLS)}")
            check("every tool has an object input schema",
                  all(tool.input_schema.get("type") == "object" and "properties" in tool.input_schema for tool in listed.tools))

            # 2. each tool.
            state = await ok(session, "start", feature="login", phases=["code", "review", "done"], context={"ticket": 7})
            iid = state["instance_id"]
            check("start returns the state", state["current_phase"] == "code" and state["variables"] == {"ticket": 7})
            other = (await ok(session, "start", feature="login", schema={"name": "bug", "phases": [{"name": "fix"}]}))["instance_id"]
            doc = await ok(session, "status", id=iid)
            cli = json.loads(chatflow("status", iid, "--json"))
            check("status is the command's status --json", doc == cli, f"{doc} != {cli}")
            check("status carries the transition and the history", doc["transition"] == 0 and len(doc["history"]) == 1)
            feature = await ok(session, "feature", feature="login")
            check("feature counts both instances", feature["total_instances"] == 2, json.dumps(feature))
            listed = await ok(session, "list", feature="login")
            check("list by feature", {s["instance_id"] for s in listed["instances"]} == {iid, other})
            check("list by phase", [s["instance_id"] for s in (await ok(session, "list", phase="fix"))["instances"]] == [other])
            check("list by status", len((await ok(session, "list", status="running"))["instances"]) == 2)

            grant = await ok(session, "claim", phase="code", **{"as": "coder"}, ttl="2m")
            check("claim takes the instance in code", grant["instance_id"] == iid and grant["transition"] == 0 and grant["token"])
            check("a claimed instance is not claimable",
                  (await ok(session, "list", phase="code", claimable=True))["instances"] == [])
            await error(session, "claim", "not_found", phase="code", **{"as": "second"})
            beat = await ok(session, "heartbeat", id=iid, token=grant["token"], ttl=600)
            check("heartbeat extends the lease", beat["expires_at"] > grant["expires_at"], json.dumps(beat))
            await error(session, "trigger", "conflict", id=iid)
            await error(session, "trigger", "conflict", id=iid, token="wrong")
            await error(session, "heartbeat", "conflict", id=iid, token="wrong")
            await error(session, "trigger", "conflict", id=iid, token=grant["token"], expect_transition=5)
            await ok(session, "save_artifact", id=iid, name="notes.md", text="# notes\n")
            await ok(session, "save_artifact", id=iid, name="blob.bin", base64="AAEC/w==")
            check("artifacts lists both",
                  sorted((await ok(session, "artifacts", id=iid))["artifacts"]) == ["blob.bin", "notes.md"])
            check("artifact returns text", (await ok(session, "artifact", id=iid, name="notes.md"))["text"] == "# notes\n")
            check("artifact returns binary as base64", (await ok(session, "artifact", id=iid, name="blob.bin"))["base64"] == "AAEC/w==")
            moved = await ok(session, "trigger", id=iid, token=grant["token"], expect_transition=0, data={"pr": 12})
            check("trigger with the token moves on", moved["current_phase"] == "review" and moved["variables"]["pr"] == 12)
            grant2 = await ok(session, "claim", phase="review", **{"as": "reviewer"})
            released = await ok(session, "release", id=iid, token=grant2["token"])
            check("release gives the claim up", released["released"] is True)
            check("a released instance is claimable again",
                  [s["instance_id"] for s in (await ok(session, "list", phase="review", claimable=True))["instances"]] == [iid])
            history = await ok(session, "history", id=iid)
            check("history has both phases", [e["phase"] for e in history["history"]] == ["code", "review"])
            failed = await ok(session, "fail", id=other, reason="not reproducible")
            check("fail marks it failed", failed["status"] == "failed")
            await error(session, "trigger", "finished", id=other)

            # The review hook ran for the trigger above (the watcher is running).
            deadline = time.monotonic() + 20
            while True:
                runs = (await ok(session, "runs", id=iid))["runs"]
                if any(r.get("exit_code") == 0 and r["hook"] == "review" for r in runs):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"no finished run of the review hook: {runs}")
                await anyio.sleep(0.05)
            check("runs shows the review hook", any(r["hook"] == "review" for r in runs), json.dumps(runs))
            logs = await ok(session, "logs", id=iid)
            check("logs returns the hook's output", f"\nreviewing {iid}\n" in logs["text"] and not logs["running"], json.dumps(logs))
            again = await ok(session, "logs", id=iid, offset=logs["next_offset"])
            check("logs from next_offset returns nothing new", again["text"] == "", json.dumps(again))
            rerun = await ok(session, "rerun", id=iid, hook="review")
            check("rerun asks the running watcher", rerun["requested"] is True and rerun["watcher_running"] is True
                  and rerun["transition"] == 1, json.dumps(rerun))
            lacking = await error(session, "rerun", "invalid_input", id=iid, hook="deploy")
            check("rerun of a hook the transition lacks names its hooks", "its hooks: review" in lacking["message"], lacking["message"])

            # 3. a wait that returns when another process triggers.
            async def trigger_later():
                await anyio.sleep(0.3)
                await anyio.to_thread.run_sync(chatflow, "trigger", iid, "--force")
            started = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(trigger_later)
                waited = await ok(session, "wait", id=iid, phase="done", timeout_seconds=20)
            took = time.monotonic() - started
            check("wait returns the state another process triggered", waited["current_phase"] == "done", json.dumps(waited))
            check("wait waited for the trigger", 0.25 <= took < 20, f"{took:.3f} s")
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: anyio.to_thread.run_sync(chatflow, "start", "--feature", "later", "--phases", "triage"))
                anyone = await ok(session, "wait", phase="triage", feature="later", timeout_seconds=20)
            check("wait for any instance entering a phase", anyone["feature_id"] == "later" and anyone["current_phase"] == "triage")
            timed = await error(session, "wait", "timeout", id=iid, phase="code", timeout_seconds=0.3)
            check("a wait that runs out says so", "wait again" in timed["message"], timed["message"])
            await error(session, "wait", "invalid_input", id=iid, phase="code", timeout_seconds=600)
            typo = await error(session, "wait", "invalid_input", id=iid, phase="reveiw")
            check("a wait for a phase the workflow lacks names its phases", "known phases: code, review, done" in typo["message"], typo["message"])
            # A client that gives up sends notifications/cancelled: the server ends that wait.
            def waits_ended():
                return [line for line in open(server_log.name).read().splitlines() if "tool=wait" in line]
            before = len(waits_ended())
            try:
                await session.call_tool("wait", {"id": iid, "phase": "code", "timeout_seconds": 50}, read_timeout_seconds=0.3)
                raise AssertionError("the wait should have timed out on the client's side")
            except AssertionError:
                raise
            except Exception:
                pass
            with anyio.fail_after(10):
                while len(waits_ended()) == before:
                    await anyio.sleep(0.05)
            ended = waits_ended()[before]
            took = float(ended.split("took=")[1].split()[0])
            check("a wait the client cancels ends in the server then, not after its 50 s", took < 10, ended)

            # A cached status is dropped when another process changes the instance.
            cached = chatflow("start", "--feature", "cache", "--phases", "a,b").strip()
            check("status before another process's trigger", (await ok(session, "status", id=cached))["current_phase"] == "a")
            chatflow("trigger", cached)
            with anyio.fail_after(5):
                while (await ok(session, "status", id=cached))["current_phase"] != "b":
                    await anyio.sleep(0.01)
            check("status shows another process's trigger at once, not after the cache's 30 s", True)

            # 4. a subscription's notification.
            uri = f"chatflow://instances/{iid}"
            resources = await session.list_resources()
            check("instances are resources", uri in {str(r.uri) for r in resources.resources})
            read = await session.read_resource(uri)
            check("a resource reads as the status document", json.loads(read.contents[0].text)["instance_id"] == iid)
            await session.subscribe_resource(uri)
            with anyio.fail_after(10):
                await anyio.to_thread.run_sync(chatflow, "trigger", iid, "--force")
                await updated.wait()
            check("a subscription is notified of a change by another process", uri in notifications, repr(notifications))

            # 5. errors are tool errors.
            await error(session, "status", "not_found", id="wfi_000000000000")
            await error(session, "status", "invalid_input", id="../etc")
            await error(session, "status", "invalid_input", id=iid, verbose=True)
            await error(session, "start", "invalid_input", feature="x")
            await error(session, "trigger", "invalid_input", id=iid, expect_transition="one")
            await error(session, "logs", "not_found", id=other)

    print("all checks passed:", len(checked), flush=True)


anyio.run(main)
