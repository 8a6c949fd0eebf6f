"""`chatflow` process wall time, two builds alternated call by call: cli-wall.py OLD_CHATFLOW NEW_CHATFLOW."""
import json
import subprocess
import sys
import tempfile
import time

old, new = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="chatflow-wall-")
root = work + "/.chatflow"
subprocess.run([new, "--root", root, "init"], check=True, capture_output=True)
iid = subprocess.run([new, "--root", root, "start", "--feature", "f", "--phases", "a,b"], check=True, capture_output=True, text=True).stdout.strip()
for args, label in ((["status", iid], "status"), (["status", iid, "--json"], "status_json"), (["trigger", iid, "--to", "a"], "trigger")):
    times = {"old": [], "new": []}
    for i in range(1000):
        which = "old" if i % 2 == 0 else "new"
        t = time.perf_counter()
        subprocess.run([old if which == "old" else new, "--root", root, *args], check=True, stdout=subprocess.DEVNULL)
        times[which].append((time.perf_counter() - t) * 1000)
    for k, v in times.items():
        v.sort()
        print(json.dumps({"name": f"cli.{label}_wall.{k}", "p50": round(v[len(v)//2], 3), "p90": round(v[int(len(v)*0.9)], 3), "p99": round(v[int(len(v)*0.99)], 3), "n": len(v)}))
subprocess.run(["rm", "-rf", work])
