"""Drives chatflow-ui in headless Chromium (Debian's chromium and chromium-driver, PyPI selenium).

usage: ui_browser.py BIN_DIR WORK_DIR [SCREENSHOT_DIR]

Every check raises on failure (exit 1, the reason on stderr); on success it prints one line per
check and `all checks passed` last. Screenshots of the board and an instance page go to
SCREENSHOT_DIR (default WORK_DIR).
"""

import json
import os
import subprocess
import sys
import time
import http.client
import socket
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from processes import started

BIN, WORK = sys.argv[1], sys.argv[2]
SHOTS = sys.argv[3] if len(sys.argv) > 3 else WORK
ROOT = os.path.join(WORK, ".chatflow")
TOKEN = "t0ken-for-the-browser-test"
checked = []


def chatflow(*args):
    done = subprocess.run([os.path.join(BIN, "chatflow"), "--root", ROOT, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"chatflow {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    checked.append(name)
    print("ok:", name, flush=True)


def request(url, method="GET", headers=None, body=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers or {}, data=body), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main():
    os.makedirs(ROOT + "/hooks")
    # The watcher trusts only hook folders no one else may write: whatever the caller's umask.
    for folder in (ROOT, ROOT + "/hooks"):
        os.chmod(folder, 0o755)
    chatflow("init")
    for phase, body in [("review", 'echo "reviewing $CHATFLOW_INSTANCE_ID"; echo "looks good"'), ("testing", 'echo "2 tests failed" >&2; exit 1'),
                        ("fix", 'echo "fixing"; exec sleep 60')]:
        path = os.path.join(ROOT, "hooks", phase)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
    watcher, _ = started([os.path.join(BIN, "chatflow-watch"), "--root", ROOT, "--shutdown-grace", "1"], "watching")
    try:
        scenario(watcher)
    finally:
        # Ended on every path: a watcher left running holds the caller's pipes open.
        watcher.terminate()
        watcher.wait(10)
    print("all checks passed:", len(checked), flush=True)


def scenario(watcher):
    ids = [chatflow("start", "--feature", "login", "--phases", "design,implement,testing,review,done", "--context", '{"ticket": 7}')
           for _ in range(3)]
    ids.append(chatflow("start", "--feature", "search", "--phases", "triage,fix,verify"))
    chatflow("trigger", ids[0], "--data", '{"design": "approved"}')
    chatflow("trigger", ids[0], "--data", '{"implement": "PR 12"}')   # → testing: its hook fails
    chatflow("trigger", ids[0], "--to", "review", "--force")           # → review: its hook prints
    chatflow("trigger", ids[1])
    chatflow("claim", "--phase", "implement", "--as", "coder-1")
    chatflow("save-artifact", ids[0], "report.txt", "--file", "/etc/hostname")
    # The review hook's run is recorded before the page looks for it.
    deadline = time.monotonic() + 20
    while "review" not in chatflow("runs", ids[0]) or "exit 0" not in chatflow("runs", ids[0]):
        if time.monotonic() > deadline:
            raise AssertionError("the review hook never ran: " + chatflow("runs", ids[0]))
        time.sleep(0.05)

    refused = subprocess.run([os.path.join(BIN, "chatflow-ui"), "--root", ROOT, "--bind", "0.0.0.0", "--port", "0"],
                             capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "CHATFLOW_UI_TOKEN"})
    check("a non-loopback bind without a token is refused", refused.returncode == 2 and "token" in refused.stderr, refused.stderr)

    token_file = os.path.join(WORK, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    ui, line = started([os.path.join(BIN, "chatflow-ui"), "--root", ROOT, "--port", "0", "--actions", "--token-file", token_file,
                        "--idle-timeout", "2"], "serving")
    base = line.split(" on ", 1)[1].split("/?")[0].strip()
    try:
        http_checks(base, ids)
        hostile_http_checks(base, ids, ui)
        browser_checks(base, ids)
    finally:
        ui.terminate()
        # A follower still open must not hold the server past its shutdown.
        ui.wait(10)
        check("the server stopped with a log follow open", ui.returncode is not None)


def http_checks(base, ids):
    status, _ = request(base + "/api/board")
    check("without the token the API is refused", status == 401, status)
    auth = {"X-ChatFlow-Token": TOKEN}
    status, body = request(base + f"/api/instances/{ids[0]}", headers=auth)
    cli = json.loads(chatflow("status", ids[0], "--json"))
    api = json.loads(body)
    for doc in (api, cli):
        for hook in doc["running_hooks"]:
            hook.pop("elapsed", None)
    check("the API's instance is the command's status --json", status == 200 and api == cli, f"{api} != {cli}")
    status, body = request(base + "/api/instances?phase=design&claimable=true", headers=auth)
    check("the API lists what is claimable", status == 200 and [s["instance_id"] for s in json.loads(body)] == [ids[2]], body)
    action = base + f"/api/instances/{ids[2]}/trigger"
    json_auth = {**auth, "Content-Type": "application/json"}
    status, body = request(action, "POST", {**json_auth, "Origin": "http://evil.example"}, b"{}")
    check("an action from another origin is refused", status == 403 and b"origin" in body, body)
    status, body = request(action, "POST", {"Content-Type": "application/json", "Cookie": f"chatflow_token={TOKEN}"}, b"{}")
    check("an action with only the cookie (a cross-site form) is refused", status == 403, body)
    status, body = request(action, "POST", {**json_auth, "Sec-Fetch-Site": "cross-site"}, b"{}")
    check("an action a browser marks cross-site is refused", status == 403, body)
    check("refused actions changed nothing", json.loads(chatflow("status", ids[2], "--json"))["current_phase"] == "design")
    status, body = request(base + f"/api/instances/{ids[2]}/artifacts/nothing", headers=auth)
    check("a missing artifact is not_found", status == 404 and json.loads(body)["error"]["code"] == "not_found", body)

    # Server-sent events resume from Last-Event-ID.
    stream = urllib.request.urlopen(urllib.request.Request(base + "/api/events", headers=auth), timeout=10)
    chatflow("trigger", ids[3], "--data", '{"seen": 1}')
    last = None
    while last is None:
        line = stream.readline().decode()
        if line.startswith("id: "):
            last = line[4:].strip()
    stream.close()
    chatflow("trigger", ids[3], "--data", '{"missed": 1}')
    stream = urllib.request.urlopen(urllib.request.Request(base + "/api/events", headers={**auth, "Last-Event-ID": last}), timeout=10)
    replayed = None
    while replayed is None:
        line = stream.readline().decode()
        if line.startswith("data: ") and "instance_id" in line:
            replayed = json.loads(line[6:])
    stream.close()
    check("a reconnect with Last-Event-ID gets the change it missed", replayed["instance_id"] == ids[3], replayed)


def threads_and_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


OPEN_FOLLOW = []   # kept open through the browser checks, and over the server's shutdown


def hostile_http_checks(base, ids, ui):
    auth = {"X-ChatFlow-Token": TOKEN}
    json_auth = {**auth, "Content-Type": "application/json"}
    action = base + f"/api/instances/{ids[2]}/trigger"
    status, body = request(action, "POST", {**auth, "Content-Type": "application/jsonfoo"}, b"{}")
    check("an action whose type only starts with application/json is refused", status == 403, body)
    status, body = request(action, "POST", json_auth, b'{"data": "' + b"x" * (2 << 20) + b'"}')
    check("a body over 1 MiB is 413, not 500", status == 413, (status, body[:200]))
    host, port = base.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", f"//evil.example/?token={TOKEN}")
    answer = connection.getresponse()
    location = answer.getheader("Location") or ""
    connection.close()
    check("a token link redirects to this server's own path only", answer.status == 303 and location.startswith("/") and not location.startswith("//"), location)
    status, _ = request(base + "/", headers=auth)
    with urllib.request.urlopen(urllib.request.Request(base + "/", headers=auth), timeout=10) as page:
        policy = page.headers.get("Content-Security-Policy", "")
        frames = page.headers.get("X-Frame-Options", "")
    check("pages carry a CSP that forbids framing", "frame-ancestors 'none'" in policy and "default-src 'self'" in policy and frames == "DENY", policy)
    status, body = request(base + f"/api/instances/{ids[1]}", headers=auth)
    claim = (json.loads(body).get("current_entry") or {}).get("claim") or {}
    check("a claim's token is not shown to readers", status == 200 and claim.get("owner") == "coder-1" and "token" not in claim, claim)
    check("nor by status --json", "token" not in ((json.loads(chatflow("status", ids[1], "--json")).get("current_entry") or {}).get("claim") or {}))

    # DNS rebinding: a server without a token answers only requests named for loopback.
    open_ui, line = started([os.path.join(BIN, "chatflow-ui"), "--root", ROOT, "--port", "0"], "serving",
                            env={k: v for k, v in os.environ.items() if k != "CHATFLOW_UI_TOKEN"})
    try:
        open_base = line.split(" on ", 1)[1].strip().rstrip("/")
        status, _ = request(open_base + "/api/board", headers={"Host": "evil.example"})
        check("without a token, another Host is refused (DNS rebinding)", status == 403, status)
        status, _ = request(open_base + "/api/board")
        check("without a token, loopback by its own name is served", status == 200, status)
    finally:
        open_ui.terminate()
        open_ui.wait(10)

    # Connections that send nothing, or half a request (slowloris), are closed.
    host, port = base.split("//", 1)[1].split(":")
    for opening in (b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
        sock = socket.create_connection((host, int(port)), timeout=15)
        sock.sendall(opening)
        started_at = time.monotonic()
        try:
            closed = sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            closed = False
        sock.close()
        check(f"a silent connection is closed ({'half a request' if opening else 'nothing sent'})", closed and time.monotonic() - started_at < 10, time.monotonic() - started_at)

    # Followers of a running hook's log end with their client.
    chatflow("trigger", ids[3])   # → fix: its hook runs for a minute
    deadline = time.monotonic() + 20
    while "running" not in chatflow("runs", ids[3]):
        if time.monotonic() > deadline:
            raise AssertionError("the fix hook never started: " + chatflow("runs", ids[3]))
        time.sleep(0.05)
    before = threads_and_descriptors(ui.pid)
    follow = base + f"/api/instances/{ids[3]}/logs/follow"
    for _ in range(40):
        stream = urllib.request.urlopen(urllib.request.Request(follow, headers=auth), timeout=10)
        stream.read(3)
        stream.close()
    deadline = time.monotonic() + 15
    after = threads_and_descriptors(ui.pid)
    while (after[0] > before[0] + 2 or after[1] > before[1] + 4) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = threads_and_descriptors(ui.pid)
    check("40 closed follows leave no thread or descriptor behind", after[0] <= before[0] + 2 and after[1] <= before[1] + 4, (before, after))
    OPEN_FOLLOW.append(urllib.request.urlopen(urllib.request.Request(follow, headers=auth), timeout=10))


def browser_checks(base, ids):
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,860"]:
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # The pages re-render as changes arrive: an element can go stale between find and read.
    wait = WebDriverWait(driver, 15, ignored_exceptions=[StaleElementReferenceException, NoSuchElementException])
    try:
        driver.get(base + f"/?token={TOKEN}")   # signs the browser in, then drops the token from the address
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == 4)
        check("the board lists the instances", all(driver.find_elements(By.ID, f"card-{i}") for i in ids))
        check("the token is not left in the address", "token" not in driver.current_url, driver.current_url)
        card = driver.find_element(By.ID, f"card-{ids[0]}")
        check("a failed hook is highlighted on its card", "problem" in card.get_attribute("class") and "testing" in card.text, card.text)
        check("a claim shows its owner", "claimed by coder-1" in driver.find_element(By.ID, f"card-{ids[1]}").text)
        wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("class") == "live on")
        column = lambda d, i: d.find_element(By.ID, f"card-{i}").find_element(By.XPATH, "..").get_attribute("data-phase")
        check("the card starts in design", column(driver, ids[2]) == "design")
        chatflow("trigger", ids[2])   # another process moves it
        wait.until(lambda d: column(d, ids[2]) == "implement")
        check("a trigger from another process shows up on the open board without a reload", True)
        driver.save_screenshot(os.path.join(SHOTS, "board.png"))

        driver.get(base + f"/instances/{ids[0]}")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".bar")) == 4)
        phases = [bar.get_attribute("data-phase") for bar in driver.find_elements(By.CSS_SELECTOR, ".bar")]
        check("the instance page shows its history as a timeline", phases == ["design", "implement", "testing", "review"], phases)
        check("the timeline shows the trigger data", "PR 12" in driver.find_element(By.CSS_SELECTOR, ".timeline").text)
        check("variables are shown as JSON", json.loads(driver.find_element(By.ID, "variables").text)["ticket"] == 7)
        review = [row for row in driver.find_elements(By.CSS_SELECTOR, "tr") if "review" in row.text][0]
        review.find_element(By.CSS_SELECTOR, "button.log").click()
        wait.until(lambda d: "looks good" in d.find_element(By.ID, "log").text)
        check("a hook's log is shown", f"reviewing {ids[0]}" in driver.find_element(By.ID, "log").text)
        check("the failed hook's run is highlighted", any("problem" in (r.get_attribute("class") or "") and "testing" in r.text
                                                        for r in driver.find_elements(By.CSS_SELECTOR, "tr")))
        check("artifacts are listed for download", driver.find_element(By.LINK_TEXT, "report.txt").get_attribute("download") == "report.txt")
        chatflow("trigger", ids[0], "--data", '{"review": "approved"}')
        wait.until(lambda d: d.find_element(By.ID, "phase").text == "done")
        check("the instance page follows a trigger from another process", True)
        driver.save_screenshot(os.path.join(SHOTS, "instance.png"))

        # An action from the page itself (same origin, token header) is allowed and recorded.
        driver.get(base + f"/instances/{ids[2]}")
        wait.until(lambda d: d.find_element(By.ID, "phase").text == "implement")
        driver.find_element(By.XPATH, "//button[text()='Trigger next']").click()
        wait.until(lambda d: d.find_element(By.ID, "phase").text == "testing")
        state = json.loads(chatflow("status", ids[2], "--json"))
        check("a page action is recorded like any other write", state["meta"].get("triggered_by") == "chatflow ui", state["meta"])

        # Stored XSS: what others write (context, trigger data, a failure reason, a claim's
        # owner, hook output) is shown as text, never run.
        payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
        hostile = chatflow("start", "--feature", "xss", "--phases", "a,b,c", "--context", json.dumps({"note": payload}))
        chatflow("trigger", hostile, "--data", json.dumps({"text": payload}))
        chatflow("claim", "--phase", "b", "--as", payload)
        chatflow("fail", hostile, "--reason", payload, "--force")
        for page in ("/", f"/instances/{hostile}", "/features/xss"):
            driver.get(base + page)
            wait.until(lambda d: d.find_elements(By.ID, f"card-{hostile}") or hostile in d.find_element(By.ID, "main").text)
            if page.startswith("/instances/"):
                wait.until(lambda d: "onerror" in d.find_element(By.ID, "main").text)
            check(f"stored markup is shown as text, not run ({page})",
                  driver.execute_script("return window.__pwned === undefined") and not driver.find_elements(By.CSS_SELECTOR, "img[src='x']"))

        driver.get(base + "/features/login")
        wait.until(lambda d: "3 instances" in d.find_element(By.ID, "main").text)
        check("the feature page shows its counts and instances", len(driver.find_elements(By.CSS_SELECTOR, "tr")) == 4)
        logs = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        check("no script errors in the browser", not logs, logs)
    finally:
        driver.quit()


main()
