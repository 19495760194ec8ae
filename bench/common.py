"""Small helpers every bench scenario shares: ports, process CPU and memory, sudo, medians."""
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sudo():
    """The prefix that runs a command as root: nothing when we are root already."""
    return [] if os.geteuid() == 0 else ["sudo"]


def apt_install(*packages):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo() + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True,
                   env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30, process=None):
    """Until something accepts on the loopback port; with `process` (a Popen), ProcessLookupError
    as soon as that process has ended instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise ProcessLookupError(f"the process ended (exit {process.returncode})") from None
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def _stat_fields(pid):
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid):
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children


def tree_cpu_seconds(pid):
    """CPU seconds of a process, its waited-for children, and every live descendant.

    Postfix and Haraka spread work over child processes; counting the whole tree makes the
    figure comparable with relayq's single process."""
    ticks = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = _stat_fields(current)
            # utime, stime, cutime, cstime (fields 14-17 of proc(5), counted from 3 here).
            ticks += sum(int(value) for value in fields[11:15])
            pending.extend(_children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile: its time moved to its parent's cutime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def median(values):
    return statistics.median(values) if values else float("nan")


def cell(values, digits=0):
    """"median [min-max]" of a figure's runs."""
    if not values:
        return "-"
    return f"{median(values):,.{digits}f} [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"
