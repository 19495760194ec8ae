#!/usr/bin/python3
"""A large deferred queue: memory with it full, and how fast relayq comes back on it.

The target (performance issue): "A queue of 1,000,000 deferred 4 KiB messages: resident memory
under 256 MiB; after a restart the relay accepts new mail within 2 s and has every queued
message scheduled within 30 s" -- with every message synced to disk before its 250, which is
relayq's only mode.

The scenario:
1. relayq starts on an empty queue with its smarthost a closed port (127.0.0.1:9), so every
   delivery attempt fails temporarily and every message stays queued, deferred. The retry
   interval is long (`retry_initial`, 1 h by default) so that no retry round runs during the
   measurement: what is measured is a queue at rest.
2. smtp-source fills it with `messages` 4 KiB messages over `sessions` sessions, in chunks of
   at most `chunk` messages (each chunk is one bounded smtp-source run).
3. We wait until every message has had its first attempt and is deferred: the counter
   relayq_recipients_deferred_total reaches `messages` and the gauge
   relayq_queue_messages{state="scheduled"} counts them all.
4. SIGTERM, then relayq starts again on the same queue. From the moment it is started, a client
   tries every 10 ms to send one message until it gets a 250; and we wait until the log says
   the due index is loaded (`event=queue_loaded`) and the relayq_queue_messages gauges count
   every queued message.

measure() returns a dict:
  queued                  messages in the queue when it was full (the gauges' sum)
  fill_seconds            smtp-source time for all messages (until the last 250)
  fill_msg_per_s          messages / fill_seconds
  fill_cpu_per_1000       relayq's CPU seconds per 1,000 messages from its start to its exit
                          (filling, first attempts, stop): steadier than the rate on a busy host
  deferred_seconds        from the last 250 until every message was deferred
  rss_full_mib            relayq's RSS with the full queue, every message deferred
  rss_fill_peak_mib       the highest RSS sampled (every 0.5 s) while filling and deferring
  store_size_mib          relayq_queue_store_size_bytes with the full queue
  stop_seconds            SIGTERM until relayq exited
  first_250_seconds       relayq started (Popen) until a new message got its 250
  all_scheduled_seconds   relayq started until the due index was loaded and the gauges
                          counted every queued message
  rss_loaded_mib          RSS at that moment
  rss_restart_peak_mib    the highest RSS sampled from the restart until the idle figure
  rss_idle_mib            RSS after `idle` more seconds of the restarted relay doing nothing

Run alone: bench/queue_scenario.py --messages 100000 [--binary build/relayq] [--keep]
(needs about 5.5 KiB of free disk per message: 5.5 GB for a million)."""
import argparse
import json
import os
import shutil
import smtplib
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, rss_mib, wait_until  # noqa: E402
from load import ensure_postfix, smtp_source  # noqa: E402
from relayq_system import Relayq  # noqa: E402

SIZE = 4096
# Free disk needed per message: the WAL, the bodies (once, plus compaction's temporary copies).
DISK_PER_MESSAGE = 5632


def samples(relay, name):
    """Every sample of one metric family as {labels text: value}."""
    values = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{relay.metrics_port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                key, value = line.rsplit(" ", 1)
                values[key[len(name):]] = float(value)
    return values


def queue_gauges(relay):
    found = samples(relay, "relayq_queue_messages")
    return {state: found.get(f'{{state="{state}"}}', 0.0) for state in ("ready", "scheduled", "held")}


class RssPeak:
    """Samples a process's RSS every half second in the background and keeps the highest."""

    def __init__(self, pid):
        self.pid, self.peak = pid, 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(0.5):
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return

    def stop(self):
        self.stopped.set()
        self.thread.join()
        return self.peak


class FirstAccept:
    """From the moment relayq is started, tries every 10 ms to send one message until a 250."""

    def __init__(self, relay, started, timeout):
        self.relay, self.started, self.timeout = relay, started, timeout
        self.seconds, self.error, self.attempts = None, None, 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        body = "Subject: after restart\r\n\r\n" + ("x" * 76 + "\r\n") * (SIZE // 78)
        deadline = self.started + self.timeout
        while not hasattr(self.relay, "port"):  # chosen by Relayq.__enter__ just before Popen
            time.sleep(0.001)
        while time.monotonic() < deadline:
            self.attempts += 1
            try:
                with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as smtp:
                    smtp.sendmail("bench@example.test", ["sink@example.org"], body)
                self.seconds = time.monotonic() - self.started
                return
            except (OSError, smtplib.SMTPException) as error:
                self.error = error
                time.sleep(0.01)

    def wait(self):
        self.thread.join()
        if self.seconds is None:
            raise TimeoutError(f"no 250 within {self.timeout} s of the restart: {self.error!r}")
        return self.seconds


def log_has(path, offset, text):
    with open(path, "rb") as log:
        log.seek(offset)
        return text.encode() in log.read()


def fill_queue(binary, workdir, messages, sessions, chunk, extra, figures, progress):
    """Steps 1-3: a new queue filled with `messages` deferred messages, then SIGTERM."""
    with Relayq(binary, workdir, extra=extra) as relay:
        peak = RssPeak(relay.process.pid)
        start = time.monotonic()
        sent = 0
        while sent < messages:
            count = min(chunk, messages - sent)
            smtp_source(relay.port, sessions, count, SIZE)
            sent += count
            progress(f"queue_scenario: {sent} sent, {sent / (time.monotonic() - start):.0f} msg/s, "
                     f"RSS {rss_mib(relay.process.pid):.0f} MiB")
        filled = time.monotonic()
        figures["fill_seconds"] = filled - start
        figures["fill_msg_per_s"] = messages / figures["fill_seconds"]
        wait_until(lambda: relay.metric("relayq_recipients_deferred_total") >= messages
                   and queue_gauges(relay)["scheduled"] >= messages,
                   max(120, messages / 1000), "every message deferred")
        figures["deferred_seconds"] = time.monotonic() - filled
        figures["queued"] = int(sum(queue_gauges(relay).values()))
        figures["rss_full_mib"] = rss_mib(relay.process.pid)
        figures["rss_fill_peak_mib"] = max(peak.stop(), figures["rss_full_mib"])
        figures["store_size_mib"] = relay.metric("relayq_queue_store_size_bytes") / 2**20
        progress(f"queue_scenario: full queue {figures}")
        stopping = time.monotonic()
    figures["stop_seconds"] = time.monotonic() - stopping
    figures["fill_cpu_per_1000"] = relay.cpu_used * 1000 / messages


def measure(binary, workdir, messages=1_000_000, sessions=50, keep=False, idle=60, chunk=100_000,
            retry_initial="1h", loaded_marker="event=queue_loaded", fill=True, progress=print):
    """Runs the scenario (see the module's doc) and returns its figures.

    fill=False skips steps 1-3 and restarts on the queue an earlier run kept (keep=True) in
    `workdir`, which must hold `messages` messages: for trying changes to the start-up."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    if fill and free < messages * DISK_PER_MESSAGE:
        raise RuntimeError(f"{workdir}: {free / 2**30:.1f} GiB free, the scenario needs "
                           f"{messages * DISK_PER_MESSAGE / 2**30:.1f} GiB")
    ensure_postfix()
    extra = f'[retry]\ninitial = "{retry_initial}"\n'
    figures = {} if fill else {"queued": messages}
    log_path = workdir / "relayq.log"
    try:
        if fill:
            fill_queue(binary, workdir, messages, sessions, chunk, extra, figures, progress)

        offset = log_path.stat().st_size
        relay = Relayq(binary, workdir, keep_queue=True, extra=extra)
        started = time.monotonic()
        first = FirstAccept(relay, started, timeout=120)
        with relay:
            peak = RssPeak(relay.process.pid)
            figures["first_250_seconds"] = first.wait()
            expected = figures["queued"] + 1  # the message sent after the restart

            def all_scheduled():
                if not log_has(log_path, offset, loaded_marker):
                    return False
                return sum(queue_gauges(relay).values()) >= expected

            wait_until(all_scheduled, 600, "every queued message scheduled after the restart")
            figures["all_scheduled_seconds"] = time.monotonic() - started
            figures["rss_loaded_mib"] = rss_mib(relay.process.pid)
            progress(f"queue_scenario: restarted {figures}")
            time.sleep(idle)
            figures["rss_idle_mib"] = rss_mib(relay.process.pid)
            figures["rss_restart_peak_mib"] = max(peak.stop(), figures["rss_idle_mib"])
    finally:
        if not keep:
            shutil.rmtree(workdir / "queue", ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "build" / "relayq"))
    parser.add_argument("--workdir", default=os.environ.get("RELAYQ_BENCH_DIR", str(ROOT / "var" / "bench-queue")))
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the queue directory afterwards")
    parser.add_argument("--restart-only", action="store_true",
                        help="skip the fill: restart on the queue a --keep run left in --workdir")
    parser.add_argument("--loaded-marker", default="event=queue_loaded",
                        help="the log text that says the due index is loaded (older relayq: event=queue_opened)")
    args = parser.parse_args()
    figures = measure(args.binary, args.workdir, args.messages, args.sessions, keep=args.keep, idle=args.idle,
                      loaded_marker=args.loaded_marker, fill=not args.restart_only,
                      progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
