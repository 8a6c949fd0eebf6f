"""What the interop scripts share: starting a ChatFlow process and waiting until it says it is ready."""

import subprocess
import threading


def started(command, marker, env=None):
    """A process and the stderr line with `marker` (it prints it once ready); the rest of its
    stderr is drained, so that its log lines never fill the pipe and stall it."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    while True:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"{command[0]} ended before it was ready: {lines}")
        lines.append(line)
        if marker in line:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, line
