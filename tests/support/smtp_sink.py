#!/usr/bin/python3
"""A real ESMTP server for integration tests: stores what it accepts, answers as scripted.

smtp_sink.py --listen 127.0.0.1:PORT --dir OUTDIR [--reply-script FILE]
             [--pipelining | --no-pipelining] [--max-size N] [--hostname NAME]
             [--tls-cert PEM --tls-key PEM [--tls-client-cert]]

Each accepted message becomes OUTDIR/<n>.eml (the content, dot-unstuffed) and then
OUTDIR/<n>.json ({"mail_from", "rcpt_to", "connection", "peer", "time", "helo", "mail_params",
"tls"}, tls being null or {"version", "cipher", "resumed"});
both appear by rename, the .json last, so a reader that sees the .json sees the whole message.
Each new connection appends "<k> <ip:port> <unix time>" to OUTDIR/connections.log.

The reply script is a JSON object whose keys are "greeting", "ehlo", "mail", "rcpt" and "data"
(the reply after the content). A list value gives the next replies to that step across all
connections, in order (null meaning the normal reply), then normal replies; a string value is
the reply every time. A 421 reply closes the connection; a 5xx greeting leaves only QUIT.

Content with a bare CR or LF is refused with 550 (the relay must never send one), and only a
"." line after CRLF ends it. Without pipelining, a client that sends a command before the
previous reply gets "554 5.5.0 SMTP synchronization error" and is cut off, as Exim does.

With --tls-cert and --tls-key the sink offers STARTTLS (RFC 3207) until TLS is up, and drops
whatever the client pipelined after it.

Prints "ready" once listening; SIGTERM or SIGINT stop it cleanly.
"""
import argparse
import ipaddress
import itertools
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time

STEPS = ("greeting", "ehlo", "mail", "rcpt", "data")
MAX_COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4, CRLF included


class ReplyScript:
    """The scripted replies, shared by every connection."""

    def __init__(self, rules):
        unknown = set(rules) - set(STEPS)
        if unknown:
            raise ValueError(f"unknown reply script steps: {sorted(unknown)}")
        self.rules = {step: (list(rule) if isinstance(rule, list) else rule)
                      for step, rule in rules.items()}
        self.lock = threading.Lock()

    def reply(self, step, normal):
        with self.lock:
            rule = self.rules.get(step)
            if isinstance(rule, list):
                scripted = rule.pop(0) if rule else None
            else:
                scripted = rule
        return normal if scripted is None else scripted


class Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, family, options, script):
        self.address_family = family
        self.options = options
        self.script = script
        self.outdir = options.dir
        self.tls_context = None
        if options.tls_cert:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(options.tls_cert, options.tls_key)
            if options.tls_client_cert:  # a handshake that clients without one fail
                self.tls_context.verify_mode = ssl.CERT_REQUIRED
                self.tls_context.load_verify_locations(options.tls_cert)
        self.connections = itertools.count(1)
        self.messages = itertools.count(1)
        self.lock = threading.Lock()  # the counters and connections.log
        super().__init__(address, Session)

    def new_connection(self, peer):
        with self.lock:
            number = next(self.connections)
            with open(os.path.join(self.outdir, "connections.log"), "a") as log:
                log.write(f"{number} {peer} {time.time():.3f}\n")
        return number

    def store(self, content, envelope):
        with self.lock:
            number = next(self.messages)
        base = os.path.join(self.outdir, str(number))
        for suffix, data in ((".eml", content), (".json", json.dumps(envelope).encode())):
            temporary = os.path.join(self.outdir, f".{number}{suffix}.tmp")
            with open(temporary, "wb") as file:
                file.write(data)
            os.rename(temporary, base + suffix)
        return number


class Closed(Exception):
    """The client went away, or we hung up on it."""


class Session(socketserver.BaseRequestHandler):
    """One SMTP connection: commands in, replies out (grouped while pipelined input waits)."""

    def setup(self):
        self.sink = self.server
        self.options = self.sink.options
        self.input = bytearray()
        self.output = bytearray()
        self.peer = format_peer(self.client_address)
        self.connection = self.sink.new_connection(self.peer)
        self.helo = ""
        self.esmtp = False
        self.tls = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = []
        self.rcpt_to = []

    # --- I/O ---------------------------------------------------------------------------

    def receive(self):
        self.flush()  # the client may be waiting for these before it says more
        data = self.request.recv(65536)
        if not data:
            raise Closed()
        self.input += data

    def read_line(self, limit=None):
        while True:
            end = self.input.find(b"\n")
            if end >= 0:
                line = bytes(self.input[:end + 1])
                del self.input[:end + 1]
                return line
            if limit is not None and len(self.input) > limit:
                self.input.clear()
                return None
            self.receive()

    def input_waiting(self):
        if self.input:
            return True
        readable, _, _ = select.select([self.request], [], [], 0)
        return bool(readable)

    def reply(self, text, flush=False):
        self.output += text.encode() + b"\r\n"
        if flush or not self.input:
            self.flush()

    def flush(self):
        if self.output:
            self.request.sendall(self.output)
            self.output.clear()

    def hang_up(self, text):
        self.reply(text, flush=True)
        raise Closed()

    # --- The dialogue ------------------------------------------------------------------

    def handle(self):
        try:
            self.dialogue()
        except (Closed, ConnectionError, ssl.SSLError):
            pass

    def dialogue(self):
        host = self.options.hostname
        greeting = self.sink.script.reply("greeting", f"220 {host} ESMTP smtp_sink")
        self.reply(greeting, flush=True)
        if greeting.startswith("421"):
            raise Closed()
        refused = not greeting.startswith("2")
        while True:
            line = self.read_line(limit=MAX_COMMAND_LINE)
            if line is None:
                self.reply("500 5.5.2 Line too long")
                continue
            if not self.options.pipelining and self.input_waiting():
                self.hang_up("554 5.5.0 SMTP synchronization error")
            if not line.endswith(b"\r\n"):
                self.reply("500 5.5.2 Command lines must end in CRLF")
                continue
            command = line[:-2].decode("utf-8", "replace")
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            argument = argument.strip()
            if refused and verb != "QUIT":
                self.reply("503 5.5.1 No service")
                continue
            handler = COMMANDS.get(verb)
            if handler is None:
                self.reply("500 5.5.2 Command unrecognized")
                continue
            handler(self, argument)

    def on_ehlo(self, argument):
        if not argument:
            return self.reply("501 5.5.4 Syntax: EHLO hostname")
        lines = [self.options.hostname]
        if self.options.pipelining:
            lines.append("PIPELINING")
        lines.append(f"SIZE {self.options.max_size}" if self.options.max_size else "SIZE")
        lines += ["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if self.sink.tls_context is not None and self.tls is None:
            lines.append("STARTTLS")
        normal = "\r\n".join(f"250-{text}" for text in lines[:-1]) + f"\r\n250 {lines[-1]}"
        reply = self.sink.script.reply("ehlo", normal)
        if reply.startswith("2"):
            self.helo, self.esmtp = argument, True
            self.reset()
        self.scripted(reply)

    def on_helo(self, argument):
        if not argument:
            return self.reply("501 5.5.4 Syntax: HELO hostname")
        self.helo, self.esmtp = argument, False
        self.reset()
        self.reply(f"250 {self.options.hostname}")

    def on_mail(self, argument):
        if not self.helo:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.mail_from is not None:
            return self.reply("503 5.5.1 Error: nested MAIL command")
        path = parse_path(argument, "FROM:")
        if path is None:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        address, params = path
        for param in params:
            keyword, _, value = param.partition("=")
            keyword = keyword.upper()
            if not self.esmtp or keyword not in ("SIZE", "BODY", "SMTPUTF8"):
                return self.reply(f"555 5.5.4 Unsupported option: {keyword}")
            if keyword == "SIZE":
                if not value.isdigit():
                    return self.reply("501 5.5.4 Bad SIZE parameter")
                if self.options.max_size and int(value) > self.options.max_size:
                    return self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
            if keyword == "BODY" and value.upper() not in ("7BIT", "8BITMIME"):
                return self.reply("501 5.5.4 Bad BODY parameter")
        reply = self.sink.script.reply("mail", "250 2.1.0 Ok")
        if reply.startswith("2"):
            self.mail_from, self.mail_params = address, params
        self.scripted(reply)

    def on_rcpt(self, argument):
        if self.mail_from is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        path = parse_path(argument, "TO:")
        if path is None or not path[0]:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        reply = self.sink.script.reply("rcpt", "250 2.1.5 Ok")
        if reply.startswith("2"):
            self.rcpt_to.append(path[0])
        self.scripted(reply)

    def on_data(self, argument):
        if argument:
            return self.reply("501 5.5.4 Syntax: DATA")
        if self.mail_from is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        if not self.rcpt_to:
            return self.reply("554 5.5.1 Error: no valid recipients")
        self.reply("354 End data with <CR><LF>.<CR><LF>", flush=True)
        content, fault = self.read_content()
        if fault:
            self.reset()
            return self.reply(fault)
        reply = self.sink.script.reply("data", None)
        if reply is None:
            number = self.sink.store(content, {
                "mail_from": self.mail_from, "rcpt_to": self.rcpt_to,
                "connection": self.connection, "peer": self.peer, "time": time.time(),
                "helo": self.helo, "mail_params": self.mail_params, "tls": self.tls})
            reply = f"250 2.0.0 Ok: queued as {number}"
        self.reset()
        self.scripted(reply)

    def read_content(self):
        """Reads up to CRLF.CRLF; returns the unstuffed content and a refusal, if any."""
        content = bytearray()
        fault = None
        while True:
            line = self.read_line()
            if line == b".\r\n":
                break
            body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not line.endswith(b"\r\n") or b"\r" in body:
                fault = "550 5.6.0 Message contains bare CR or bare LF"
            if body.startswith(b"."):
                line = line[1:]
            content += line
        if self.options.max_size and len(content) > self.options.max_size:
            fault = fault or "552 5.3.4 Message size exceeds fixed maximum message size"
        return bytes(content), fault

    def on_starttls(self, argument):
        if self.sink.tls_context is None or self.tls is not None:
            return self.reply("502 5.5.1 Command not implemented")
        self.reply("220 2.0.0 Ready to start TLS", flush=True)
        self.input.clear()  # nothing pipelined before TLS is read after it
        self.request = self.sink.tls_context.wrap_socket(self.request, server_side=True)
        self.tls = {"version": self.request.version(), "cipher": self.request.cipher()[0],
                    "resumed": self.request.session_reused}
        self.helo, self.esmtp = "", False
        self.reset()

    def on_rset(self, argument):
        self.reset()
        self.reply("250 2.0.0 Ok")

    def on_noop(self, argument):
        self.reply("250 2.0.0 Ok")

    def on_quit(self, argument):
        self.hang_up("221 2.0.0 Bye")

    def scripted(self, reply):
        if reply.startswith("421"):
            self.hang_up(reply)
        self.reply(reply)


COMMANDS = {
    "EHLO": Session.on_ehlo,
    "HELO": Session.on_helo,
    "MAIL": Session.on_mail,
    "RCPT": Session.on_rcpt,
    "DATA": Session.on_data,
    "RSET": Session.on_rset,
    "NOOP": Session.on_noop,
    "QUIT": Session.on_quit,
    "STARTTLS": Session.on_starttls,
}


def parse_path(argument, prefix):
    """"FROM:<a@b> PARAMS" -> ("a@b", ["PARAM", ...]), or None when malformed."""
    if not argument.upper().startswith(prefix):
        return None
    rest = argument[len(prefix):].lstrip()
    if not rest.startswith("<") or ">" not in rest:
        return None
    address, _, params = rest[1:].partition(">")
    return address, params.split()


def format_peer(address):
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text):
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    address = ipaddress.ip_address(host)
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return (host, int(port)), family


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="loopback ip:port or [ip6]:port")
    parser.add_argument("--dir", required=True, help="where messages and connections.log go")
    parser.add_argument("--reply-script", help="JSON rules for non-default replies")
    parser.add_argument("--pipelining", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--max-size", type=int, default=0, help="SIZE limit in bytes; 0 = none")
    parser.add_argument("--hostname", default="sink.test")
    parser.add_argument("--tls-cert", help="PEM certificate chain: offer STARTTLS")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--tls-client-cert", action="store_true",
                        help="demand a client certificate (so that handshakes fail)")
    options = parser.parse_args()
    try:
        address, family = parse_listen(options.listen)
    except ValueError as error:
        parser.error(f"--listen: {error}")
    rules = {}
    if options.reply_script:
        with open(options.reply_script) as file:
            rules = json.load(file)
    os.makedirs(options.dir, exist_ok=True)
    sink = Sink(address, family, options, ReplyScript(rules))

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=sink.serve_forever, kwargs={"poll_interval": 0.1})
    serving.start()
    print("ready", flush=True)
    # Sleeps rather than waits on the event: the handler runs on this thread, and its set()
    # would deadlock on the event's lock if wait() held it when the signal came.
    while not stop.is_set():
        time.sleep(0.1)
    sink.shutdown()
    serving.join()
    sink.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
