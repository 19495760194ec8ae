"""Accept latency under a paced load: end of DATA ("\\r\\n.\\r\\n" sent) until the 250 is read.

Open-loop pacing: message k of `messages` is due at start + k / rate and goes out on session
k % sessions, so the offered rate does not drop when relayq slows down (a session that falls
behind sends its next message at once, and the lateness is reported). Every message is synced
to disk before its 250, as always. By default relayq delivers nothing (its smarthost is a
closed port), like bench/run's accept figure that sets the rate; deliver=True relays to a null
sink instead, so that deliveries share the store and the CPU with the accepts as in production.

Two views of the same messages:
- client: measured here, per message, from the write of the final "\\r\\n.\\r\\n" to the read
  of the 250 line (includes loopback, relayq's loop, and this client's own event loop);
- server: relayq's relayq_accept_duration_seconds histogram (store submit to completion on
  the connection's loop), read before and after; its quantiles are bucket upper bounds.

measure() returns a dict; run this file directly for a quick look:
    bench/latency_scenario.py build/relayq --rate 2000 --messages 20000"""
import argparse
import asyncio
import collections
import json
import math
import os
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Sink  # noqa: E402
from relayq_system import Relayq  # noqa: E402

SENDER = "bench@example.test"
RECIPIENT = "sink@example.org"


def raise_fd_limit():
    """The soft RLIMIT_NOFILE of this process up to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def message_data(size):
    """A `size`-byte message (headers and 76-byte CRLF lines) followed by the end of data."""
    head = (f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: latency bench\r\n"
            "Message-ID: <bench@example.test>\r\n\r\n").encode()
    line = b"x" * 74 + b"\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    body += b"y" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body) + b".\r\n"  # the body ends in CRLF: this completes "\r\n.\r\n"


class SmtpClient(asyncio.Protocol):
    """The client side of one SMTP session, lean enough to pace thousands of messages a second
    from one Python process: replies are parsed as they arrive and time-stamped there, not when
    the waiting coroutine gets to run."""

    def __init__(self):
        self.transport = None
        self.pending = bytearray()
        self.replies = collections.deque()  # (code, last line, arrival time) of final lines
        self.waiter = None
        self.wanted = 0
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        arrived = time.perf_counter()
        self.pending += data
        while (end := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[:end + 1])
            del self.pending[:end + 1]
            if line[3:4] != b"-":  # the last line of a reply
                self.replies.append((int(line[:3]), line, arrived))
        self._wake()

    def connection_lost(self, exc):
        self.closed = True
        self._wake()

    def _wake(self):
        if self.waiter and not self.waiter.done() and (len(self.replies) >= self.wanted or self.closed):
            self.waiter.set_result(None)

    async def read(self, count=1):
        """The next `count` replies: [(code, line, arrival time)]."""
        if len(self.replies) < count and not self.closed:
            self.wanted = count
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        if len(self.replies) < count:
            raise ConnectionError("connection closed while waiting for a reply")
        return [self.replies.popleft() for _ in range(count)]

    async def expect(self, *codes, what=""):
        replies = await self.read(len(codes))
        for code, (got, line, _) in zip(codes, replies):
            if got != code:
                raise RuntimeError(f"{what}: expected {code}, got {line!r}")
        return replies

    def write(self, data):
        self.transport.write(data)

    def close(self):
        self.transport.close()


async def open_session(port, helo="bench.test"):
    """A connected session that has been greeted and said EHLO."""
    _, client = await asyncio.get_running_loop().create_connection(SmtpClient, "127.0.0.1", port)
    await client.expect(220, what="greeting")
    client.write(f"EHLO {helo}\r\n".encode())
    await client.expect(250, what="EHLO")
    return client


# MAIL, RCPT and DATA go out together (relayq announces PIPELINING; DATA ends the group).
ENVELOPE = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()


async def send_one(client, data):
    """One transaction on an open session; returns the seconds from the write of the end of
    data to the arrival of the 250."""
    client.write(ENVELOPE)
    await client.expect(250, 250, 354, what="MAIL, RCPT, DATA")
    client.write(data)
    sent = time.perf_counter()
    ((code, line, arrived),) = await client.read(1)
    if code != 250:
        raise RuntimeError(f"end of data: expected 250, got {line!r}")
    return arrived - sent


async def paced_load(port, rate, messages, sessions, size, warmup=True):
    """Sends `messages` at `rate` msg/s over `sessions` sessions (open loop, see the module
    docstring). Returns latencies (s) in send order, lateness (s) per message, the seconds from
    the first due time to the last 250, and the CPU seconds this process used."""
    data = message_data(size)
    sessions = max(1, min(sessions, messages))
    opened = await asyncio.gather(*(open_session(port) for _ in range(sessions)))
    if warmup:  # one unmeasured message per session: first-use costs stay out of the figures
        await asyncio.gather(*(send_one(client, data) for client in opened))
    latencies = [math.nan] * messages
    lateness = [0.0] * messages
    loop = asyncio.get_running_loop()
    cpu_start = time.process_time()
    start = loop.time() + 0.05

    async def session(index, client):
        for k in range(index, messages, sessions):
            due = start + k / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness[k] = max(0.0, loop.time() - due)
            latencies[k] = await send_one(client, data)

    await asyncio.gather(*(session(i, client) for i, client in enumerate(opened)))
    elapsed = loop.time() - start
    cpu = time.process_time() - cpu_start
    for client in opened:
        client.write(b"QUIT\r\n")
    for client in opened:
        try:
            await client.read(1)
        except ConnectionError:
            pass
        client.close()
    return latencies, lateness, elapsed, cpu


def quantile(values, q):
    """The nearest-rank quantile of `values` (0 < q <= 1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_summary(latencies, prefix=""):
    ms = [value * 1000 for value in latencies if not math.isnan(value)]
    return {
        f"{prefix}p50_ms": round(quantile(ms, 0.50), 3),
        f"{prefix}p90_ms": round(quantile(ms, 0.90), 3),
        f"{prefix}p99_ms": round(quantile(ms, 0.99), 3),
        f"{prefix}max_ms": round(max(ms), 3) if ms else math.nan,
        f"{prefix}mean_ms": round(sum(ms) / len(ms), 3) if ms else math.nan,
    }


def histogram_buckets(metrics_port, name="relayq_accept_duration_seconds"):
    """{upper bound (s): cumulative count} of one histogram, labels other than le ignored."""
    buckets = {}
    prefix = name + "_bucket{"
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
        for line in response.read().decode().splitlines():
            if not line.startswith(prefix):
                continue
            labels, value = line[len(prefix):].rsplit("}", 1)
            for label in labels.split(","):
                key, _, bound = label.partition("=")
                if key.strip() == "le":
                    bound = bound.strip('"')
                    upper = math.inf if bound == "+Inf" else float(bound)
                    buckets[upper] = buckets.get(upper, 0) + float(value)
    return buckets


def histogram_quantile(before, after, q):
    """The upper bound of the bucket holding quantile q of the observations between two
    scrapes (math.inf when it lies beyond the last finite bucket); the count as well."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return math.nan, 0
    for bound, count in zip(bounds, counts):
        if count >= q * total:
            return bound, int(total)
    return math.inf, int(total)


def run_load(relayq, rate, messages, sessions, size):
    """A paced load against a running relayq, with the client's and the server's figures."""
    before = histogram_buckets(relayq.metrics_port)
    cpu_before = relayq.cpu_seconds()
    latencies, lateness, elapsed, client_cpu = asyncio.run(
        paced_load(relayq.port, rate, messages, sessions, size))
    cpu_after = relayq.cpu_seconds()
    after = histogram_buckets(relayq.metrics_port)
    result = {"rate": rate, "messages": messages, "sessions": sessions, "size": size}
    result.update(latency_summary(latencies))
    result["achieved_rate"] = round(messages / elapsed, 1)
    late = [value for value in lateness if value > 0.005]
    result["late_messages"] = len(late)  # sent more than 5 ms after their due time
    result["lateness_p99_ms"] = round(quantile(lateness, 0.99) * 1000, 3)
    # This client's CPU share: near 1.0 means the client, not relayq, sets the pace.
    result["client_cpu_share"] = round(client_cpu / elapsed, 2)
    result["relayq_cpu_share"] = round((cpu_after - cpu_before) / elapsed, 2)
    for q, key in ((0.5, "server_p50_le_ms"), (0.99, "server_p99_le_ms")):
        bound, count = histogram_quantile(before, after, q)
        result[key] = bound * 1000
    result["server_observations"] = count
    return result


def measure(binary, workdir, rate, messages, sessions=50, size=4096, deliver=False):
    """relayq on a fresh queue, a paced load of `messages` at `rate` msg/s over `sessions`
    sessions; `deliver` relays to a null sink (otherwise to a closed port: stored and deferred,
    as in bench/run's accept figure).
    Returns client-side p50/p99/max (ms), the achieved rate and relayq's own histogram bounds."""
    raise_fd_limit()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sink = Sink() if deliver else None
    try:
        smarthost = f"127.0.0.1:{sink.__enter__().port}" if sink else "127.0.0.1:9"
        with Relayq(binary, workdir, smarthost=smarthost) as relayq:
            result = run_load(relayq, rate, messages, sessions, size)
            result["relayq_running"] = relayq.process.poll() is None
    finally:
        if sink:
            sink.__exit__(None, None, None)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--rate", type=float, nargs="+", default=[2000.0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--deliver", action="store_true", help="relay to a null sink")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    for rate in args.rate:
        with tempfile.TemporaryDirectory(prefix="relayq-latency-", dir=args.workdir) as workdir:
            result = measure(os.path.abspath(args.binary), workdir, rate, args.messages, args.sessions,
                             args.size, deliver=args.deliver)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
