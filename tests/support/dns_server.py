#!/usr/bin/python3
"""An authoritative DNS server for tests, on 127.0.0.1 over UDP and TCP (python3-dnslib).

    dns_server.py --port N --zone FILE [--servfail NAME]... [--timeout NAME]... [--query-log FILE]

The zone file is BIND-like text as dnslib's RR.fromZone reads it ($ORIGIN, $TTL, "." for the
root, e.g. a null MX "nullmx.test. MX 0 ."). Answers:
  - a name given with --servfail answers SERVFAIL, one given with --timeout never answers;
  - records of the asked type answer NOERROR (CNAMEs inside the zone are followed);
  - a name without records (and no records below it) answers NXDOMAIN, a name that exists
    without the asked type answers NOERROR with no data; both carry the closest SOA of the
    zone in the authority section (a default one with TTL 60 when the zone has none), so
    resolvers can cache them per RFC 2308.
UDP answers larger than 512 bytes (or the client's EDNS size) are truncated, so clients retry
over TCP as they would with a real server. --query-log appends "name TYPE" per query, for
tests that count what reached the server. Prints "ready" once both sockets listen; SIGTERM and
SIGINT stop it.
"""

import argparse
import signal
import sys
import threading
import time

from dnslib import CLASS, QTYPE, RCODE, RR, SOA, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

LISTEN_ADDRESS = "127.0.0.1"
# RFC 1035's UDP limit, used unless the query carries a larger EDNS buffer size.
CLASSIC_UDP_SIZE = 512
DEFAULT_SOA = RR("", QTYPE.SOA, CLASS.IN, 60,
                 SOA("ns.invalid.", "hostmaster.invalid.", (1, 3600, 600, 86400, 60)))

# Set on SIGTERM: releases the handler threads that hold --timeout queries unanswered.
stopping = threading.Event()


def normalize(name):
    """Lower-case with exactly one trailing dot, the form zone keys use."""
    return str(name).lower().rstrip(".") + "."


def parent(name):
    """The enclosing name ("b.c." for "a.b.c."), None above the root."""
    if name == ".":
        return None
    rest = name.split(".", 1)[1]
    return rest if rest else "."


class ZoneResolver(BaseResolver):
    def __init__(self, records, servfail, timeout, query_log):
        self.names = {}
        for rr in records:
            self.names.setdefault(normalize(rr.rname), []).append(rr)
        self.servfail = {normalize(n) for n in servfail}
        self.timeout = {normalize(n) for n in timeout}
        self.query_log = query_log
        self.log_lock = threading.Lock()

    def exists(self, name):
        # A name exists if it owns records or is an empty non-terminal above names that do.
        return name in self.names or any(n.endswith("." + name) for n in self.names)

    def closest_soa(self, name):
        while name is not None:
            for rr in self.names.get(name, []):
                if rr.rtype == QTYPE.SOA:
                    return rr
            name = parent(name)
        return DEFAULT_SOA

    def log(self, qname, qtype):
        if self.query_log:
            with self.log_lock, open(self.query_log, "a", encoding="ascii") as log:
                log.write("%s %s\n" % (qname.rstrip(".") or ".", QTYPE.get(qtype)))

    def resolve(self, request, handler):
        qname = normalize(request.q.qname)
        qtype = request.q.qtype
        self.log(qname, qtype)
        if qname in self.timeout:
            stopping.wait()
            raise DNSError("no answer by design for %s" % qname)
        reply = request.reply()
        if qname in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name, followed = qname, set()
        while True:
            if not self.exists(name):
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.closest_soa(name))
                return reply
            records = self.names.get(name, [])
            answers = [rr for rr in records if rr.rtype == qtype or qtype == QTYPE.ANY]
            if answers:
                for rr in answers:
                    reply.add_answer(rr)
                return reply
            cnames = [rr for rr in records if rr.rtype == QTYPE.CNAME]
            if cnames and qtype != QTYPE.CNAME and name not in followed:
                followed.add(name)
                reply.add_answer(cnames[0])
                name = normalize(cnames[0].rdata.label)
                continue
            reply.add_auth(self.closest_soa(name))
            return reply


class TruncatingHandler(DNSHandler):
    """Truncates UDP answers as real servers do: dnslib's handler does not by default, and its
    truncate() drops the question, which makes clients such as c-ares ignore the answer."""

    def get_reply(self, data):
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed = reply.pack()
        edns = [rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT]
        if self.protocol == "udp" and len(packed) > max([CLASSIC_UDP_SIZE] + edns):
            truncated = request.reply()
            truncated.header.tc = 1
            truncated.header.rcode = reply.header.rcode
            packed = truncated.pack()
        return packed


class QuietLogger:
    """Logs only errors, to stderr: stdout carries the "ready" line alone."""

    def log_error(self, handler, error):
        if not stopping.is_set():
            print("dns_server: %s" % error, file=sys.stderr, flush=True)

    def __getattr__(self, name):
        return lambda *args: None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--zone", required=True, help="zone file, BIND-like text")
    parser.add_argument("--servfail", action="append", default=[], metavar="NAME")
    parser.add_argument("--timeout", action="append", default=[], metavar="NAME")
    parser.add_argument("--query-log", help="append 'name TYPE' per query to this file")
    args = parser.parse_args()

    with open(args.zone, encoding="utf-8") as zone:
        records = RR.fromZone(zone.read())
    resolver = ZoneResolver(records, args.servfail, args.timeout, args.query_log)
    try:
        servers = [DNSServer(resolver, address=LISTEN_ADDRESS, port=args.port, tcp=tcp,
                             logger=QuietLogger(), handler=TruncatingHandler)
                   for tcp in (False, True)]
    except OSError as error:
        sys.exit("dns_server: cannot listen on %s:%d: %s" % (LISTEN_ADDRESS, args.port, error))
    for server in servers:
        server.start_thread()

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print("ready", flush=True)
    # The serving threads are daemons: returning ends them and closes the sockets. The main
    # thread sleeps rather than waits on the event: the handler runs on this thread, and its
    # set() would deadlock on the event's lock if wait() held it when the signal came.
    while not stopping.is_set():
        time.sleep(0.1)


if __name__ == "__main__":
    main()
