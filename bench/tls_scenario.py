#!/usr/bin/python3
"""STARTTLS inbound and outbound: relayq next to Postfix, the same certificate, the same run.

Certificates: a throwaway CA and a server certificate made at run time (bench/tls_load.py),
RSA-2048 by default. Both relays serve the same chain inbound (relayq: [tls] cert/key, every
listener offers STARTTLS; Postfix: smtpd_tls_security_level = may) and encrypt every delivery
to the counting sink, which offers STARTTLS with the same certificate (relayq: delivery.tls =
"required"; Postfix: smtp_tls_security_level = encrypt); the sink counts messages received in
clear and a run with any fails.

The load (bench/tls_load.py, Python's ssl on uvloop, since smtp-source speaks no TLS): every
session says EHLO, STARTTLS, EHLO, then sends messages of one recipient on its connection
(MAIL, RCPT and DATA pipelined, both relays announce PIPELINING), like smtp-source -d -s 50.

throughput(): 4 KiB messages over 50 sessions, --runs runs, the systems interleaved within
each run:
  null sink             the load straight into the sink: what the load and the sink reach alone
  relayq, Postfix       end to end, STARTTLS on both legs; the clock stops when the sink has
                        every message
  Postfix (TLS reuse)   Postfix with smtp_tls_connection_reuse = yes (Debian leaves it off:
                        then every delivery is a new connection and a new, resumed, handshake)
  relayq / Postfix plain  the same load without STARTTLS anywhere: what TLS costs each of them
CPU: seconds of the relay's whole process tree per 1,000 messages, and the same for the load
and the sink, which share the 2 cores with the relay.

handshake(): what a handshake costs and how reuse amortizes it. For each relay, N messages
over S sessions four ways: sessions reused (one connection per session) and a fresh
connection per message (EHLO, [STARTTLS, handshake, EHLO], one message, QUIT), each with and
without TLS. With h the cost of a handshake, c of a connection, r of TLS on one message:
    fresh TLS - fresh plain = N (r + h),  reused TLS - reused plain = N r + S h
    =>  h = ((fresh TLS - fresh plain) - (reused TLS - reused plain)) / (N - S)
        c = (fresh plain - reused plain) / (N - S)
for the relay's CPU. h comes from four noisy totals: where the relay's CPU per message varies
by more than a handshake (Postfix, whose processes start and end), the single difference
"fresh TLS - fresh plain" (h + r per connection) is the steadier figure. Then the handshake
as a client sees it (STARTTLS sent to handshake done) with one session on an otherwise idle
relay, and `openssl speed` for the signature and key exchange it contains. The load never
resumes a session: every inbound handshake is a full one (outbound, relayq keeps a session
cache per next hop, Postfix its smtp_tls_session_cache_database).

Run directly for a quick look (bench/run --scenarios tls_throughput,tls_handshake runs both):
    bench/tls_scenario.py build/relayq --runs 3 --messages 2000"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cell, median  # noqa: E402
from load import ensure_postfix  # noqa: E402
from postfix_relay import PostfixRelay  # noqa: E402
from relayq_system import Relayq  # noqa: E402
from tls_load import TlsSink, certificates, ensure_uvloop, load  # noqa: E402

SIZE = 4096


def systems(binary, certs, references, delivery_tls="required"):
    """(name, tls on, factory(workdir, smarthost)) for every system of the throughput table."""
    tls = {"cert": str(certs.cert), "key": str(certs.key)}
    chosen = [("relayq", True, lambda w, s: Relayq(binary, w, s, tls=dict(tls, delivery=delivery_tls)))]
    if "Postfix" in references:
        chosen += [("Postfix", True, lambda w, s: PostfixRelay(w, s, tls=dict(tls, outbound="encrypt"))),
                   ("Postfix (TLS reuse)", True,
                    lambda w, s: PostfixRelay(w, s, tls=dict(tls, outbound="encrypt", reuse=True)))]
    # delivery.tls = "off": the sink offers STARTTLS, and an opportunistic default would take it.
    chosen += [("relayq plain", False, lambda w, s: Relayq(binary, w, s, tls={"delivery": "off"}))]
    if "Postfix" in references:
        chosen += [("Postfix plain", False, lambda w, s: PostfixRelay(w, s))]
    return chosen


def end_to_end(factory, workdir, certs, sessions, count, tls=True, fresh=False, load_workers=2):
    """One run through a relay into the counting sink. Returns a dict of figures."""
    with TlsSink(certs) as sink:
        with factory(workdir, f"127.0.0.1:{sink.port}") as system:
            sink_cpu = sink.cpu_seconds()
            start = time.monotonic()
            sent = load(system.port, sessions, count, SIZE, tls=tls, fresh=fresh, cafile=certs.ca,
                        workers=load_workers)
            sink.wait_messages(count)
            delivered = time.monotonic() - start
            sink_cpu = sink.cpu_seconds() - sink_cpu
        stats = sink.stats()
    if tls and stats["clear_messages"]:
        raise RuntimeError(f"{stats['clear_messages']} of {count} messages reached the sink in clear")
    if tls and set(sent["protocols"]) - {"TLSv1.2", "TLSv1.3"}:
        raise RuntimeError(f"the load negotiated {sent['protocols']}")
    return {"rate": count / delivered, "accepted_rate": count / sent["seconds"],
            "cpu": system.cpu_used * 1000 / count, "cpu_seconds": system.cpu_used, "seconds": delivered,
            "load_cpu": sent["cpu"] * 1000 / count, "sink_cpu": sink_cpu * 1000 / count,
            "outbound_sessions": stats["sessions"], "outbound_tls_sessions": stats["tls_sessions"],
            "outbound_resumed_sessions": stats["resumed_sessions"],
            "handshake_p50_ms": median(sent["handshakes"]) * 1000 if sent["handshakes"] else None,
            "inbound_connections": sent["connections"], "protocols": sent["protocols"]}


def null_sink(certs, sessions, count, load_workers=2):
    """The load straight into the sink: the bound of what they reach together on this machine."""
    with TlsSink(certs) as sink:
        sink_cpu = sink.cpu_seconds()
        sent = load(sink.port, sessions, count, SIZE, cafile=certs.ca, workers=load_workers)
        sink.wait_messages(count)
        sink_cpu = sink.cpu_seconds() - sink_cpu
    return {"rate": count / sent["seconds"], "load_cpu": sent["cpu"] * 1000 / count,
            "sink_cpu": sink_cpu * 1000 / count, "cpu": 0.0}


def throughput(binary, workdir, certs, runs, messages, sessions=50, references=("Postfix",),
               delivery_tls="required", out=print):
    """The table of the module docstring; returns {system: [figures of each run]}."""
    chosen = systems(binary, certs, references, delivery_tls)
    rows = {"null sink (load -> sink)": []}
    rows.update({name: [] for name, _, _ in chosen})
    for run in range(runs):
        rows["null sink (load -> sink)"].append(null_sink(certs, sessions, messages))
        for name, tls, factory in chosen:
            rows[name].append(end_to_end(factory, workdir, certs, sessions, messages, tls=tls))
        out(f"tls throughput: run {run + 1} of {runs} done", file=sys.stderr, flush=True)

    def figure(name, key):
        return [run[key] for run in rows[name]]

    out(f"\n### STARTTLS end to end: {SIZE // 1024} KiB, {sessions} sessions, {messages:,} messages a run; "
        f"median [range] of {runs} runs; certificate {certs.algorithm}\n")
    header = ["system", "TLS", "msg/s end to end", "msg/s accepted", "CPU s/1k relay", "relayq / it",
              "outbound TLS sessions (resumed)", "CPU s/1k load + sink", "cores busy"]
    out("| " + " | ".join(header) + " |")
    out("|---|:-:|" + "---:|" * (len(header) - 2))
    relayq_rate = median(figure("relayq", "rate"))
    for name, runs_of in rows.items():
        tls = "yes" if "plain" not in name else "no"
        accepted = cell(figure(name, "accepted_rate")) if "accepted_rate" in runs_of[0] else "-"
        relative = "-"
        if tls == "yes" and name not in ("relayq", "null sink (load -> sink)"):
            relative = f"{relayq_rate / median(figure(name, 'rate')):.1f}x"
        elif name == "Postfix plain" and "relayq plain" in rows:
            relative = f"{median(figure('relayq plain', 'rate')) / median(figure(name, 'rate')):.1f}x"
        outbound = "-"
        if "outbound_tls_sessions" in runs_of[0]:
            outbound = (f"{median(figure(name, 'outbound_tls_sessions')):,.0f} "
                        f"({median(figure(name, 'outbound_resumed_sessions')):,.0f})")
        tools = median([run["load_cpu"] + run["sink_cpu"] for run in runs_of])
        busy = median([run["rate"] * (run["cpu"] + run["load_cpu"] + run["sink_cpu"]) / 1000 for run in runs_of])
        relay_cpu = f"{median(figure(name, 'cpu')):.3f}" if "cpu_seconds" in runs_of[0] else "-"
        out(f"| {name} | {tls} | {cell(figure(name, 'rate'))} | {accepted} | "
            f"{relay_cpu} | {relative} | {outbound} | {tools:.3f} | {busy:.2f} |")
    summary = {"messages": messages, "sessions": sessions, "runs": runs, "certificate": certs.algorithm,
               "rows": rows}
    postfix_names = [name for name in rows if name.startswith("Postfix") and "plain" not in name]
    if postfix_names:
        best = max(postfix_names, key=lambda name: median(figure(name, "rate")))
        times = relayq_rate / median(figure(best, "rate"))
        summary.update(ratio=times, best_postfix=best,
                       cpu_ratio=median(figure(best, "cpu")) / median(figure("relayq", "cpu")))
        out(f"\nrelayq / Postfix with STARTTLS: {times:.1f}x the faster Postfix ({best}: "
            f"{median(figure(best, 'rate')):,.0f} msg/s); CPU per message {summary['cpu_ratio']:.1f}x less. "
            f"Target >= 8x: {'met' if times >= 8 else 'NOT met'}.")
    sink_rate = median(figure("null sink (load -> sink)", "rate"))
    share = relayq_rate / sink_rate
    tools_share = median([run["rate"] * (run["load_cpu"] + run["sink_cpu"]) / 1000 for run in rows["relayq"]])
    busy = median([run["rate"] * (run["cpu"] + run["load_cpu"] + run["sink_cpu"]) / 1000 for run in rows["relayq"]])
    # The load and the sink limit relayq when relayq comes near what they reach alone, or when
    # the CPU is saturated and a good part of it is theirs.
    bottleneck = share >= 0.8 or (busy >= 1.7 and tools_share >= 0.3)
    summary.update(null_sink_rate=sink_rate, relayq_share_of_null_sink=share, tools_cores_in_relayq_runs=tools_share,
                   cores_busy_in_relayq_runs=busy, tools_bottleneck=bottleneck)
    out(f"The load and the sink alone: {sink_rate:,.0f} msg/s; relayq end to end reaches {share:.0%} of that. "
        f"relayq's runs kept {busy:.2f} of the 2 cores busy, {tools_share:.2f} of them the load's and the sink's"
        + (": they limit relayq here, so relayq's rate and the ratio are lower bounds."
           if bottleneck else ": the CPU is not saturated and relayq is far from their rate, so they are not "
           "what limits relayq (its own pipeline and the queue's syncs are)."))
    for name in ("relayq", "Postfix"):
        plain = f"{name} plain"
        if name in rows and plain in rows:
            cost = median(figure(name, "cpu")) - median(figure(plain, "cpu"))
            out(f"TLS on both legs costs {name} {cost * 1000:.0f} us of CPU per message "
                f"({median(figure(plain, 'cpu')):.3f} -> {median(figure(name, 'cpu')):.3f} s/1k) and "
                f"{1 - median(figure(name, 'rate')) / median(figure(plain, 'rate')):.0%} of its rate.")
            summary[f"{name}_tls_cpu_us_per_message"] = cost * 1000
    return summary


def openssl_speed():
    """Operations per second of one core: RSA-2048 and ECDSA P-256 signatures, X25519."""
    text = subprocess.run(["openssl", "speed", "-seconds", "1", "-mr", "rsa2048", "ecdsap256", "ecdhx25519"],
                          capture_output=True, text=True, timeout=120).stdout
    speed = {}
    for line in text.splitlines():
        fields = line.split(":")
        if line.startswith("+F2:") and fields[2] == "2048":
            speed["rsa2048_sign_per_s"] = float(fields[3])
        elif line.startswith("+F4:") and fields[2] == "256":
            speed["ecdsap256_sign_per_s"] = float(fields[3])
        elif line.startswith("+F5:") and fields[2] == "253":
            speed["x25519_per_s"] = float(fields[3])
    return speed


HANDSHAKE_MODES = (("reused plain", False, False), ("reused TLS", True, False),
                   ("fresh plain", False, True), ("fresh TLS", True, True))


def handshake(binary, workdir, certs, runs, connections=1000, sessions=50, references=("Postfix",),
              delivery_tls="required", out=print):
    """The handshake's cost (module docstring); returns the figures per relay."""
    tls = {"cert": str(certs.cert), "key": str(certs.key)}
    relays = [("relayq", lambda w, s: Relayq(binary, w, s, tls=dict(tls, delivery=delivery_tls)))]
    if "Postfix" in references:
        relays.append(("Postfix", lambda w, s: PostfixRelay(w, s, tls=dict(tls, outbound="encrypt"))))
    figures = {name: {mode: [] for mode, _, _ in HANDSHAKE_MODES} for name, _ in relays}
    serial = {name: [] for name, _ in relays}
    serial_count = max(50, connections // 5)
    for run in range(runs):
        for name, factory in relays:
            for mode, with_tls, fresh in HANDSHAKE_MODES:
                figures[name][mode].append(end_to_end(factory, workdir, certs, sessions, connections,
                                                      tls=with_tls, fresh=fresh))
            serial[name].append(end_to_end(factory, workdir, certs, 1, serial_count, tls=True, fresh=True,
                                           load_workers=1))
        out(f"tls handshake: run {run + 1} of {runs} done", file=sys.stderr, flush=True)
    speed = openssl_speed()

    out(f"\n### What a handshake costs: {connections:,} messages over {sessions} sessions, reused or one "
        f"connection each; median of {runs} runs; certificate {certs.algorithm}\n")
    header = ["relay"] + [f"{mode} msg/s (CPU ms/msg)" for mode, _, _ in HANDSHAKE_MODES] + [
        "fresh TLS - fresh plain: CPU ms", "handshake: relay CPU ms", "connection: CPU ms", "TLS per message: CPU us",
        "handshake seen by a client, 1 session: ms p50"]
    out("| " + " | ".join(header) + " |")
    out("|---|" + "---:|" * (len(header) - 1))
    summary = {"connections": connections, "sessions": sessions, "runs": runs, "certificate": certs.algorithm,
               "openssl_speed": speed, "relays": {}}
    n = connections - sessions
    for name, _ in relays:
        cpu = {mode: median([run["cpu_seconds"] for run in figures[name][mode]]) for mode, _, _ in HANDSHAKE_MODES}

        def derived(values):
            hand = ((values["fresh TLS"] - values["fresh plain"]) - (values["reused TLS"] - values["reused plain"])) / n
            conn = (values["fresh plain"] - values["reused plain"]) / n
            record = (values["reused TLS"] - values["reused plain"] - sessions * hand) / connections
            return hand, conn, record

        hand_cpu, conn_cpu, record_cpu = derived(cpu)
        client_ms = median([run["handshake_p50_ms"] for run in serial[name]])
        cells = [name] + [f"{median([r['rate'] for r in figures[name][mode]]):,.0f} "
                          f"({cpu[mode] * 1000 / connections:.2f})" for mode, _, _ in HANDSHAKE_MODES]
        fresh_tls = (cpu["fresh TLS"] - cpu["fresh plain"]) / connections
        cells += [f"{fresh_tls * 1000:.2f}", f"{hand_cpu * 1000:.2f}", f"{conn_cpu * 1000:.2f}",
                  f"{record_cpu * 1e6:.0f}", f"{client_ms:.2f}"]
        out("| " + " | ".join(cells) + " |")
        summary["relays"][name] = {
            "modes": figures[name], "serial": serial[name], "handshake_cpu_ms": hand_cpu * 1000,
            "connection_cpu_ms": conn_cpu * 1000, "fresh_tls_minus_plain_cpu_ms": fresh_tls * 1000,
            "tls_per_message_cpu_us": record_cpu * 1e6, "client_handshake_p50_ms": client_ms,
            "reused_tls_cpu_ms_per_message": cpu["reused TLS"] * 1000 / connections}
    out("")
    if speed:
        out(f"openssl speed, one core: RSA-2048 sign {1000 / speed.get('rsa2048_sign_per_s', float('nan')):.3f} ms, "
            f"ECDSA P-256 sign {1000 / speed.get('ecdsap256_sign_per_s', float('nan')):.3f} ms, X25519 "
            f"{1000 / speed.get('x25519_per_s', float('nan')):.3f} ms (a full TLS 1.3 handshake's server side: "
            "one signature, one key exchange).")
    for name, values in summary["relays"].items():
        per_message = values["reused_tls_cpu_ms_per_message"]
        hand = values["handshake_cpu_ms"]
        if hand > 0 and per_message > 0:
            out(f"{name}: a handshake costs {hand:.2f} ms of CPU, {hand / per_message:.1f} messages' worth "
                f"({per_message:.2f} ms each on a reused TLS session); spread over the messages of a session it "
                f"adds {hand / per_message:.0%} per message at 1, {hand / 10 / per_message:.0%} at 10, "
                f"{hand / 100 / per_message:.1%} at 100 and {hand / 1000 / per_message:.2%} at 1,000.")
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default=str(ROOT / "build" / "relayq"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--connections", type=int, default=1000, help="messages per mode of the handshake scenario")
    parser.add_argument("--key", default="rsa2048", choices=["rsa2048", "rsa3072", "ec256"])
    parser.add_argument("--delivery-tls", default="required", help="relayq's delivery.tls")
    parser.add_argument("--references", default="Postfix")
    parser.add_argument("--scenarios", default="tls_throughput,tls_handshake")
    parser.add_argument("--workdir", default=os.environ.get("RELAYQ_BENCH_DIR", str(ROOT / "var" / "bench")))
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_postfix()
    ensure_uvloop()
    certs = certificates(workdir / "tls", args.key)
    references = args.references.split(",")
    results = {}
    binary = os.path.abspath(args.binary)
    if "tls_throughput" in args.scenarios:
        results["tls_throughput"] = throughput(binary, workdir, certs, args.runs, args.messages, args.sessions,
                                               references, args.delivery_tls)
    if "tls_handshake" in args.scenarios:
        results["tls_handshake"] = handshake(binary, workdir, certs, args.runs, args.connections, args.sessions,
                                             references, args.delivery_tls)
    (workdir / "tls-results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nevery figure: {workdir / 'tls-results.json'}")


if __name__ == "__main__":
    sys.exit(main())
