"""Many idle inbound connections: relayq's memory, and the latency of the clients still working.

relayq relays to a null sink (messages flow, each synced before its 250) with a command
timeout long enough that the idle connections outlive the run. Steps:
1. a small paced active load (the baseline latency, end of DATA to 250), then relayq's RSS;
2. `connections` connections that read the 220 greeting, say EHLO and then stay idle;
   relayq's RSS again;
3. the same active load while they are open, then relayq's RSS;
4. a NOOP on every idle connection: each must still answer 250 (none dropped);
5. the active load once more after they closed (how much two runs differ by themselves).

measure() returns a dict; run this file directly for a quick look:
    bench/idle_scenario.py build/relayq --connections 10000"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import rss_mib  # noqa: E402
from latency_scenario import latency_summary, open_session, paced_load, raise_fd_limit  # noqa: E402
from load import Sink  # noqa: E402
from relayq_system import Relayq  # noqa: E402

# Long enough for the whole run: the idle connections must not meet relayq's command timeout
# (5 minutes by default) before they are checked.
COMMAND_TIMEOUT = "30m"
OPEN_CONCURRENCY = 256  # handshakes in flight while the idle connections are being opened


async def open_idle(port, count):
    """`count` sessions that got their greeting and EHLO reply; returns (sessions, failures)."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(index):
        async with gate:
            return await open_session(port, helo=f"idle{index}.bench.test")

    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    sessions = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    return sessions, failures


async def still_open(sessions):
    """How many of the idle sessions answer a NOOP with 250."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(client):
        async with gate:
            client.write(b"NOOP\r\n")
            await client.expect(250, what="NOOP")

    results = await asyncio.gather(*(one(client) for client in sessions), return_exceptions=True)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def close_all(sessions):
    for client in sessions:
        client.close()
    await asyncio.sleep(0)


def inbound_connections(relayq):
    """relayq_smtp_connections{direction="inbound"} (relayq.metric() would add outbound)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{relayq.metrics_port}/metrics") as response:
        for line in response.read().decode().splitlines():
            if line.startswith('relayq_smtp_connections{') and 'direction="inbound"' in line:
                return int(float(line.split()[-1]))
    return -1


def open_files_limit(pid):
    """The soft RLIMIT_NOFILE of a running process, from /proc/PID/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return -1


async def scenario(relayq, connections, active):
    result = {}
    latencies, *_ = await paced_load(relayq.port, **active)
    result.update(latency_summary(latencies, "baseline_"))
    result["rss_idle_mib"] = round(rss_mib(relayq.process.pid), 1)

    start = time.monotonic()
    sessions, failures = await open_idle(relayq.port, connections)
    result["open_seconds"] = round(time.monotonic() - start, 2)
    result["connections_open"] = len(sessions)
    result["connections_failed"] = len(failures)
    if failures:
        result["first_failure"] = repr(failures[0])
    await asyncio.sleep(1)  # let relayq settle (freed handshake garbage, lazy allocations)
    result["rss_with_idle_mib"] = round(rss_mib(relayq.process.pid), 1)
    result["relayq_inbound_connections"] = inbound_connections(relayq)
    result["per_connection_kib"] = round(
        (result["rss_with_idle_mib"] - result["rss_idle_mib"]) * 1024 / max(1, len(sessions)), 2)

    latencies, *_ = await paced_load(relayq.port, **active)
    result.update(latency_summary(latencies, "loaded_"))
    result["rss_after_load_mib"] = round(rss_mib(relayq.process.pid), 1)

    result["idle_still_open"] = await still_open(sessions)
    result["idle_seconds"] = round(time.monotonic() - start, 1)
    await close_all(sessions)

    # Once more without them: on a shared machine, how far apart two runs of the same load
    # fall by themselves tells what a baseline/loaded difference means.
    await asyncio.sleep(1)
    latencies, *_ = await paced_load(relayq.port, **active)
    result.update(latency_summary(latencies, "after_close_"))
    return result


def measure(binary, workdir, connections=10_000, active_rate=200, active_messages=2000, active_sessions=5,
            size=4096):
    """See the module docstring. The active load is paced: `active_messages` of `size` bytes at
    `active_rate` msg/s over `active_sessions` sessions, latency from end of DATA to 250."""
    fd_limit = raise_fd_limit()
    if fd_limit < connections + 100:
        raise RuntimeError(f"this process may open {fd_limit} files, fewer than {connections} connections")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    active = {"rate": active_rate, "messages": active_messages, "sessions": active_sessions, "size": size}
    with Sink() as sink, Relayq(binary, workdir, smarthost=f"127.0.0.1:{sink.port}",
                                listener_extra=f'command_timeout = "{COMMAND_TIMEOUT}"') as relayq:
        result = {"connections": connections, "relayq_open_files_limit": open_files_limit(relayq.process.pid)}
        result["rss_start_mib"] = round(rss_mib(relayq.process.pid), 1)
        result.update(asyncio.run(scenario(relayq, connections, active)))
        result["relayq_running"] = relayq.process.poll() is None
    result.update({f"active_{key}": value for key, value in active.items()})
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relayq-idle-", dir=args.workdir) as workdir:
        print(json.dumps(measure(os.path.abspath(args.binary), workdir, args.connections)), flush=True)


if __name__ == "__main__":
    main()
