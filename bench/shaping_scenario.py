#!/usr/bin/python3
"""Traffic shaping under load: a destination held to its message rate with a deep backlog, and
how long mail for another destination takes meanwhile (head-of-line blocking).

relayq routes slow.test to one smtp-sink, shaped to `rate` messages/s, and fast.test to another,
unshaped. Steps, per run:
1. `backlog` messages for slow.test are queued at full speed (smtp-source);
2. while most of them still wait for the slow lane, `probes` messages go to fast.test one after
   another; each one's time from its 250 until the fast sink has it is a probe latency;
3. the slow sink's arrivals over those seconds give the rate the lane held.
The fast sink is tests/support/smtp_sink.py (it stamps each message's arrival); the slow one is
smtp-sink, which keeps up with any rate.

    bench/shaping_scenario.py build/relayq --rate 200 --backlog 20000 --runs 3"""
import argparse
import json
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, free_port, median, wait_for_port, wait_until  # noqa: E402
from load import Sink, smtp_source  # noqa: E402
from relayq_system import Relayq  # noqa: E402


class StampingSink:
    """tests/support/smtp_sink.py: each accepted message as files, with its arrival time."""

    def __init__(self, workdir):
        self.dir = Path(workdir) / "fast-sink"
        self.dir.mkdir()
        self.port = free_port()

    def __enter__(self):
        self.process = subprocess.Popen(
            ["/usr/bin/python3", str(ROOT / "tests" / "support" / "smtp_sink.py"), "--listen",
             f"127.0.0.1:{self.port}", "--dir", str(self.dir)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def arrival(self, count):
        """The arrival time of the count-th message, waiting for it."""
        path = self.dir / f"{count}.json"
        wait_until(path.exists, 60, f"fast message {count}")
        return json.loads(path.read_text())["time"]

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_once(binary, workdir, rate, backlog, probes):
    with Sink(counting=True) as slow, StampingSink(workdir) as fast, Relayq(
            binary, workdir, extra=f"""
[routes."slow.test"]
nexthop = "127.0.0.1:{slow.port}"
[routes."fast.test"]
nexthop = "127.0.0.1:{fast.port}"
[shaping."slow.test"]
max_message_rate = "{rate}/s"
""") as relay:
        smtp_source(relay.port, 20, backlog, 4096, recipient="user@slow.test")
        window_start, slow_start = time.time(), slow.messages
        latencies = []
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as smtp:
            for n in range(probes):
                smtp.sendmail("bench@example.test", ["user@fast.test"],
                              f"Subject: probe {n}\r\n\r\nprobe {n}\r\n")
                accepted = time.time()
                latencies.append((fast.arrival(n + 1) - accepted) * 1000)
        window = time.time() - window_start
        held = (slow.messages - slow_start) / window
        waiting = backlog - slow.messages
    return {"probe_p50_ms": percentile(latencies, 0.5), "probe_p99_ms": percentile(latencies, 0.99),
            "slow_rate": held, "slow_backlog_at_end": waiting, "window_s": window}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    results = []
    for _ in range(options.runs):
        with tempfile.TemporaryDirectory(prefix="relayq-shaping-") as workdir:
            result = run_once(options.binary, workdir, options.rate, options.backlog,
                              options.probes)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(json.dumps({key: median([r[key] for r in results]) for key in results[0]}))


if __name__ == "__main__":
    main()
