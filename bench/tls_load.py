"""The STARTTLS load and the STARTTLS sink of the TLS scenarios (bench/tls_scenario.py).

Postfix's smtp-source and smtp-sink speak no TLS, and swaks forks a process per message, so
both ends are here, on Python's ssl module (OpenSSL) and Debian's python3-uvloop event loop:

- certificates(): a throwaway CA and a server certificate signed by it (openssl req), made at
  run time in the bench's work folder; cert.pem is the chain (leaf, then CA), as an MTA
  serves it.
- load(): `sessions` parallel SMTP sessions spread over a few worker processes. Each session
  says EHLO, STARTTLS, completes the handshake, says EHLO again and then sends messages of
  one recipient on the same connection until `messages` are sent, one command and one reply
  at a time like smtp-source (fresh=True: a new connection, STARTTLS and handshake for every
  message, then QUIT; tls=False: no STARTTLS). The certificate chain is verified against the
  throwaway CA. Returns the seconds until the last 250, the workers' CPU and the client-side
  handshake times (STARTTLS sent to handshake done).
- TlsSink: a counting sink that offers STARTTLS (the same certificate), answers at once and
  stores nothing; worker processes share one listening socket. It counts sessions, sessions
  that did STARTTLS (and of those, the resumed ones), and messages received in clear, so a
  run can check that the relay encrypted every delivery.

On 2 cores these processes compete with the MTA under test: bench/tls_scenario.py measures
the load straight into the sink ("null sink") and reports their CPU next to the MTA's."""
import asyncio
import multiprocessing
import os
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from common import apt_install, tree_cpu_seconds

SENDER = "bench@example.test"
RECIPIENT = "sink@example.org"
SERVER_NAME = "bench.test"
CONTEXT = multiprocessing.get_context("fork")


def ensure_uvloop():
    """Debian's python3-uvloop: the stdlib event loop costs about twice the CPU per message."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        apt_install("python3-uvloop")


def new_event_loop():
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


@dataclass
class Certificates:
    ca: Path      # the throwaway CA's certificate (what clients trust)
    cert: Path    # the server's chain: its certificate, then the CA's
    key: Path     # the server's private key
    algorithm: str


KEY_OPTIONS = {
    "rsa2048": ["-newkey", "rsa:2048"],
    "rsa3072": ["-newkey", "rsa:3072"],
    "ec256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
}


def certificates(folder, algorithm="rsa2048"):
    """A fresh CA and server certificate (SAN bench.test, localhost, 127.0.0.1), valid 2 days."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key_options = KEY_OPTIONS[algorithm]

    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    openssl("req", "-x509", *key_options, "-nodes", "-days", "2", "-subj", "/CN=relayq bench throwaway CA",
            "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))
    openssl("req", *key_options, "-nodes", "-subj", f"/CN={SERVER_NAME}",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "server.csr"))
    (folder / "server.ext").write_text(
        f"subjectAltName = DNS:{SERVER_NAME}, DNS:localhost, IP:127.0.0.1\n"
        "extendedKeyUsage = serverAuth, clientAuth\nkeyUsage = critical, digitalSignature, keyEncipherment\n")
    openssl("x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(folder / "ca.pem"),
            "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(folder / "server.ext"), "-out", str(folder / "leaf.pem"))
    (folder / "cert.pem").write_text((folder / "leaf.pem").read_text() + (folder / "ca.pem").read_text())
    os.chmod(folder / "key.pem", 0o600)
    return Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", algorithm)


def message_data(size):
    """A `size`-byte message (headers, then 76-byte CRLF lines) followed by the end of data."""
    head = (f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: tls bench\r\n"
            "Message-ID: <tls-bench@example.test>\r\n\r\n").encode()
    line = b"x" * 74 + b"\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    body += b"y" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body) + b".\r\n"


# ---------------------------------------------------------------------------------------------
# The load


class SmtpClient(asyncio.Protocol):
    """One client session: final reply lines are parsed as they arrive; read() waits for one."""

    def __init__(self):
        self.transport = None
        self.pending = bytearray()
        self.lines = []  # every line of the replies not read yet (EHLO's keywords)
        self.replies = []
        self.waiter = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.pending += data
        while (end := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[:end + 1])
            del self.pending[:end + 1]
            self.lines.append(line)
            if line[3:4] != b"-":
                self.replies.append(line)
        if self.replies and self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    async def expect(self, code, what):
        if not self.replies and not self.closed:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        if not self.replies:
            raise ConnectionError(f"{what}: connection closed")
        line = self.replies.pop(0)
        if not line.startswith(code):
            raise RuntimeError(f"{what}: expected {code.decode()}, got {line!r}")
        return line

    async def command(self, data, code, what):
        self.transport.write(data)
        return await self.expect(code, what)


class LoadWorker:
    """The sessions of one worker process; messages are taken from one count, like smtp-source."""

    def __init__(self, port, sessions, messages, size, tls, fresh, cafile, pipelining):
        self.port, self.sessions, self.remaining = port, sessions, messages
        self.tls, self.fresh = tls, fresh
        self.data = message_data(size)
        self.mail, self.rcpt = f"MAIL FROM:<{SENDER}>\r\n".encode(), f"RCPT TO:<{RECIPIENT}>\r\n".encode()
        self.envelope = self.mail + self.rcpt + b"DATA\r\n"
        self.pipelining = pipelining
        self.context = None
        if tls:
            self.context = ssl.create_default_context(cafile=str(cafile))
        self.sent = 0
        self.handshakes = []  # seconds from STARTTLS sent to handshake done
        self.connections = 0
        self.protocols = {}

    async def connect(self):
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_connection(SmtpClient, "127.0.0.1", self.port)
        self.connections += 1
        await client.expect(b"220", "greeting")
        await client.command(b"EHLO load.bench.test\r\n", b"250", "EHLO")
        if self.tls:
            if not any(line[4:12].upper() == b"STARTTLS" for line in client.lines):
                raise RuntimeError("the server does not offer STARTTLS")
            started = time.perf_counter()
            await client.command(b"STARTTLS\r\n", b"220", "STARTTLS")
            client.transport = await loop.start_tls(transport, client, self.context, server_hostname=SERVER_NAME)
            self.handshakes.append(time.perf_counter() - started)
            version = client.transport.get_extra_info("ssl_object").version()
            self.protocols[version] = self.protocols.get(version, 0) + 1
            await client.command(b"EHLO load.bench.test\r\n", b"250", "EHLO after STARTTLS")
        client.lines.clear()
        return client

    async def send(self, client):
        if self.pipelining:
            client.transport.write(self.envelope)
            await client.expect(b"250", "MAIL")
            await client.expect(b"250", "RCPT")
            await client.expect(b"354", "DATA")
        else:
            await client.command(self.mail, b"250", "MAIL")
            await client.command(self.rcpt, b"250", "RCPT")
            await client.command(b"DATA\r\n", b"354", "DATA")
        await client.command(self.data, b"250", "end of data")
        self.sent += 1

    async def quit(self, client):
        try:
            await client.command(b"QUIT\r\n", b"221", "QUIT")
        except ConnectionError:
            pass
        client.transport.close()

    async def session(self):
        client = None
        while self.remaining > 0:
            self.remaining -= 1
            if client is None:
                client = await self.connect()
            await self.send(client)
            if self.fresh:
                await self.quit(client)
                client = None
        if client is not None:
            await self.quit(client)

    async def run(self):
        await asyncio.gather(*(self.session() for _ in range(self.sessions)))


def _load_worker(worker, go, results):
    loop = new_event_loop()
    go.wait()
    cpu = time.process_time()
    try:
        loop.run_until_complete(worker.run())
        error = None
    except Exception as exc:  # reported to the parent, which raises it
        error = f"{type(exc).__name__}: {exc}"
    results.put({"sent": worker.sent, "end": time.monotonic(), "cpu": time.process_time() - cpu,
                 "handshakes": worker.handshakes, "connections": worker.connections,
                 "protocols": worker.protocols, "error": error})
    loop.close()


def load(port, sessions, messages, size, tls=True, fresh=False, cafile=None, workers=2, pipelining=True):
    """Sends `messages` messages of `size` bytes over `sessions` sessions (see the module
    docstring). Returns a dict: seconds (start to the last 250), cpu (the workers' CPU
    seconds), handshakes (seconds each), connections, protocols ({TLS version: count})."""
    workers = max(1, min(workers, sessions))
    go = CONTEXT.Event()
    results = CONTEXT.Queue()
    processes = []
    for index in range(workers):
        share = sessions // workers + (index < sessions % workers)
        count = messages // workers + (index < messages % workers)
        worker = LoadWorker(port, share, count, size, tls, fresh, cafile, pipelining)
        process = CONTEXT.Process(target=_load_worker, args=(worker, go, results), daemon=True)
        process.start()
        processes.append(process)
    time.sleep(0.2)  # the workers are waiting on `go` with their event loop made
    start = time.monotonic()
    go.set()
    reports = [results.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
    errors = [report["error"] for report in reports if report["error"]]
    if errors:
        raise RuntimeError(f"the load failed: {errors[0]}")
    protocols = {}
    for report in reports:
        for version, count in report["protocols"].items():
            protocols[version] = protocols.get(version, 0) + count
    return {"seconds": max(report["end"] for report in reports) - start,
            "sent": sum(report["sent"] for report in reports),
            "cpu": sum(report["cpu"] for report in reports),
            "handshakes": [seconds for report in reports for seconds in report["handshakes"]],
            "connections": sum(report["connections"] for report in reports),
            "protocols": protocols}


# ---------------------------------------------------------------------------------------------
# The sink

# Counters per worker, in shared memory: each worker writes only its own.
MESSAGES, CLEAR_MESSAGES, SESSIONS, TLS_SESSIONS, RESUMED_SESSIONS = range(5)
COUNTERS = 5


class SinkSession(asyncio.Protocol):
    """One server session of the sink: commands answered at once (pipelined ones in one write),
    DATA read up to the end marker and counted."""

    def __init__(self, sink):
        self.sink = sink
        self.transport = None
        self.buffer = bytearray()
        self.in_data = False
        self.scan = 0
        self.tls = False
        self.upgrading = False

    def connection_made(self, transport):
        self.transport = transport
        self.sink.count(SESSIONS)
        transport.write(b"220 sink.bench.test ESMTP\r\n")

    def data_received(self, data):
        if self.upgrading:
            return  # nothing may follow STARTTLS before the handshake
        self.buffer += data
        out = []
        while True:
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):
                    end = 0
                else:
                    end = self.buffer.find(b"\r\n.\r\n", self.scan)
                    if end < 0:
                        self.scan = max(0, len(self.buffer) - 4)
                        break
                    end += 2
                del self.buffer[:end + 3]
                self.in_data, self.scan = False, 0
                self.sink.count(MESSAGES)
                if not self.tls:
                    self.sink.count(CLEAR_MESSAGES)
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            verb = bytes(self.buffer[:4]).upper()
            del self.buffer[:end + 2]
            if verb in (b"EHLO", b"HELO"):
                out.append(b"250-sink.bench.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
                           + (b"" if self.tls else b"250-STARTTLS\r\n") + b"250 ENHANCEDSTATUSCODES\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out.append(b"250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"STAR" and not self.tls:
                self.transport.pause_reading()
                self.transport.write(b"".join(out) + b"220 2.0.0 Ready to start TLS\r\n")
                self.upgrading = True
                asyncio.get_running_loop().create_task(self.start_tls())
                return
            elif verb == b"QUIT":
                self.transport.write(b"".join(out) + b"221 2.0.0 Bye\r\n")
                self.transport.close()
                return
            else:
                out.append(b"502 5.5.2 Error: command not recognized\r\n")
        if out:
            self.transport.write(b"".join(out))

    async def start_tls(self):
        loop = asyncio.get_running_loop()
        try:
            self.transport = await loop.start_tls(self.transport, self, self.sink.context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError):
            self.transport.close()
            return
        self.tls, self.upgrading = True, False
        self.buffer.clear()
        self.sink.count(TLS_SESSIONS)
        if self.transport.get_extra_info("ssl_object").session_reused:
            self.sink.count(RESUMED_SESSIONS)

    def connection_lost(self, exc):
        pass


class _SinkWorker:
    def __init__(self, index, counters, context):
        self.base, self.counters, self.context = index * COUNTERS, counters, context

    def count(self, which):
        self.counters[self.base + which] += 1


def _sink_worker(index, listener, counters, cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    worker = _SinkWorker(index, counters, context)
    loop = new_event_loop()
    loop.run_until_complete(loop.create_server(lambda: SinkSession(worker), sock=listener, backlog=4096))
    loop.run_forever()


class TlsSink:
    """The counting STARTTLS sink on a free loopback port (see the module docstring)."""

    def __init__(self, certificates, workers=2):
        self.certificates, self.workers = certificates, workers

    def __enter__(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        self.port = listener.getsockname()[1]
        self.counters = CONTEXT.RawArray("q", COUNTERS * self.workers)
        self.processes = []
        for index in range(self.workers):
            process = CONTEXT.Process(target=_sink_worker, daemon=True,
                                      args=(index, listener, self.counters, self.certificates.cert,
                                            self.certificates.key))
            process.start()
            self.processes.append(process)
        listener.close()
        return self

    def total(self, which):
        return sum(self.counters[base + which] for base in range(0, len(self.counters), COUNTERS))

    @property
    def messages(self):
        return self.total(MESSAGES)

    def stats(self):
        return {"messages": self.total(MESSAGES), "clear_messages": self.total(CLEAR_MESSAGES),
                "sessions": self.total(SESSIONS), "tls_sessions": self.total(TLS_SESSIONS),
                "resumed_sessions": self.total(RESUMED_SESSIONS)}

    def cpu_seconds(self):
        return sum(tree_cpu_seconds(process.pid) for process in self.processes)

    def wait_messages(self, count, timeout=900):
        deadline = time.monotonic() + timeout
        while self.messages < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink received {self.messages} of {count} messages")
            if any(not process.is_alive() for process in self.processes):
                raise RuntimeError("a sink worker ended")
            time.sleep(0.005)

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.join()
