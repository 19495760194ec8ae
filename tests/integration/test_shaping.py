"""Traffic shaping per destination: a message rate that holds while another destination runs at
full speed, messages per connection, and the adaptive slow-down after "421 4.7.28" replies and
the recovery after successes, as the log, `relayq queue stats` and /metrics show them."""
import json
import signal
import smtplib
import subprocess

from conftest import RELAYQ_BIN, DnsServer, Sink, free_port, metric_value, wait_until


def routes(**sinks):
    return "".join(f'[routes."{domain}"]\nnexthop = "127.0.0.1:{port}"\n'
                   for domain, port in sinks.items())


def submit(port, rcpts):
    """One message per recipient, over one SMTP session: mail is queued faster than the rates
    shaped here deliver it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for n, rcpt in enumerate(rcpts):
            smtp.sendmail("sender@client.test", [rcpt],
                          f"Subject: shaped {n}\r\n\r\nmessage {n} to {rcpt}\r\n")


def stats(relay):
    out = subprocess.run([RELAYQ_BIN, "queue", "stats", "--json", "--admin",
                          f"127.0.0.1:{relay.admin_port}"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return json.loads(out)


def lane(relay, name):
    return next((entry for entry in stats(relay)["shaping"] if entry["name"] == name), None)


def arrival_times(sink, count):
    return sorted(meta["time"] for meta, _ in sink.wait_for(count, timeout=60))


def test_a_rate_limited_destination_gets_its_rate_while_another_runs_at_full_speed(
        make_relay, tmp_path):
    rate, count = 20, 60
    slow_port, fast_port = free_port(), free_port()
    slow = Sink(tmp_path, "127.0.0.1", slow_port)
    fast = Sink(tmp_path, "127.0.0.1", fast_port)
    relay = make_relay(delivery="", extra=routes(**{"slow.test": slow_port,
                                                    "fast.test": fast_port}) + f"""
[shaping."slow.test"]
max_message_rate = "{rate * 60}/m"
""")
    try:
        rcpts = [f"user{n}@{domain}" for n in range(count) for domain in ("slow.test", "fast.test")]
        submit(relay.smtp_port, rcpts)
        fast_times = arrival_times(fast, count)
        slow_times = arrival_times(slow, count)
        # The first two may go at once (the limiter's burst); from there on, the rate.
        measured = (count - 3) / (slow_times[-1] - slow_times[2])
        assert rate * 0.9 <= measured <= rate * 1.1, measured
        # The other destination did not wait for the slow one: all of its mail was there while
        # the slow one still had half of its own to go (which takes 1.5 s at the rate).
        assert fast_times[-1] < slow_times[count // 2], (fast_times[-1], slow_times)
        shown = lane(relay, "slow.test")
        assert shown["configured"] and shown["message_rate"] == rate
        assert lane(relay, "fast.test") is None  # nothing to show: not shaped, not slowed
        # Connections open as the rate needs them, not one per waiting message.
        assert len(slow.connections()) <= 4, slow.connections()
    finally:
        slow.stop()
        fast.stop()


def test_max_messages_per_connection_opens_new_connections(make_relay, tmp_path):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    relay = make_relay(delivery="", extra=routes(**{"conn.test": port}) + """
[shaping."conn.test"]
max_messages_per_connection = 4
max_connections = 1
""")
    try:
        submit(relay.smtp_port, [f"user{n}@conn.test" for n in range(20)])
        messages = sink.wait_for(20)
        per_connection = {}
        for meta, _ in messages:
            per_connection[meta["connection"]] = per_connection.get(meta["connection"], 0) + 1
        assert max(per_connection.values()) <= 4, per_connection
        assert len(sink.connections()) >= 5
    finally:
        sink.stop()


def test_421_4_7_28_slows_the_destination_down_and_successes_bring_it_back(
        make_relay, tmp_path):
    port = free_port()
    # Ten messages go through, then the next twenty transactions hear Gmail's rate-limit reply
    # (which closes the connection), then all is well again.
    limited = "421 4.7.28 Our system has detected an unusual rate of unsolicited mail"
    sink = Sink(tmp_path, "127.0.0.1", port, replies={"data": [None] * 10 + [limited] * 20})
    relay = make_relay(delivery="recover_after = 10", extra=routes(**{"busy.test": port}) + """
[shaping."busy.test"]
max_message_rate = "40/s"
max_connections = 4

[retry]
initial = "1s"
factor = 1.0
jitter = 0.0
""")
    try:
        submit(relay.smtp_port, [f"user{n}@busy.test" for n in range(60)])
        wait_until(lambda: "event=slowdown" in relay.log_text(), what="a slow-down")
        slowed = relay.log_text().split("event=slowdown", 1)[1].splitlines()[0]
        assert "lane=busy.test level=0.5 message_rate=20 max_connections=2" in slowed, slowed
        assert "4.7.28" in slowed
        assert metric_value(relay.metrics_port, "relayq_delivery_slowdowns_total") >= 1
        # Every message arrives: the deferred ones on their retry.
        sink.wait_for(60, timeout=90)
        # Ten deliveries per step back up, all the way to the configured limits.
        wait_until(lambda: (lane(relay, "busy.test") or {}).get("slowdown_steps") == 0,
                   what="recovery")
        shown = lane(relay, "busy.test")
        assert shown["level"] == 1 and shown["message_rate"] == 40
        assert shown["max_connections"] == 4
        log = relay.log_text()
        assert log.index("event=slowdown") < log.rindex("event=speedup")
        assert "level=1 message_rate=40 max_connections=4" in log.rsplit("event=speedup", 1)[1]
        assert metric_value(relay.metrics_port, "relayq_destinations_slowed") == 0
    finally:
        sink.stop()


def test_queue_stats_shows_a_destination_while_it_is_slowed(make_relay, tmp_path):
    port = free_port()
    # Every transaction is refused as too fast until the sink has said so a hundred times.
    sink = Sink(tmp_path, "127.0.0.1", port,
                replies={"mail": ["421 4.7.0 Too many messages, slow down"] * 100})
    relay = make_relay(delivery="", extra=routes(**{"busy.test": port}) + """
[retry]
initial = "1h"
""")
    try:
        submit(relay.smtp_port, ["a@busy.test", "b@busy.test"])
        # Not shaped by name: the lane is the route's, named by its next hop.
        name = f"host:127.0.0.1:{port}"
        wait_until(lambda: lane(relay, name) is not None, what="the slowed lane in stats")
        shown = lane(relay, name)
        assert not shown["configured"] and shown["slowdown_steps"] == 1
        assert shown["level"] == 0.5
        text = subprocess.run([RELAYQ_BIN, "queue", "stats", "--admin",
                               f"127.0.0.1:{relay.admin_port}"], capture_output=True, text=True,
                              timeout=30, check=True).stdout
        row = next(line for line in text.splitlines() if line.startswith(name))
        assert "50%" in row and "slowed (1 steps)" in row, text
        assert metric_value(relay.metrics_port, "relayq_destinations_slowed") == 1
    finally:
        sink.stop()


def test_sighup_applies_new_shaping(make_relay, tmp_path):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    relay = make_relay(delivery="", extra=routes(**{"slow.test": port}) + """
[shaping."slow.test"]
max_message_rate = "5/s"
""")
    try:
        submit(relay.smtp_port, ["a@slow.test"])
        sink.wait_for(1)
        assert lane(relay, "slow.test")["message_rate"] == 5
        config = relay.config_path.read_text().replace('"5/s"', '"50/s"')
        relay.config_path.write_text(config + '\n[shaping."new.test"]\nmax_connections = 2\n')
        relay.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "event=reloaded" in relay.log_text(), what="the reload")
        # The lane in use has its new rate; the new entry shows before any mail used it.
        assert lane(relay, "slow.test")["message_rate"] == 50
        added = lane(relay, "new.test")
        assert added["max_connections"] == 2 and added["message_rate"] == 0
        submit(relay.smtp_port, [f"user{n}@slow.test" for n in range(30)])
        times = arrival_times(sink, 31)[1:]
        # 30 messages at 50/s take about 0.6 s; at the old 5/s they would take 6 s.
        assert times[-1] - times[0] < 4, times
    finally:
        sink.stop()


def test_domains_on_one_mx_host_set_share_its_lane(make_relay, tmp_path):
    # Two domains hosted by one provider (their MX hosts under provider.test), and one that is
    # not, all on one sink; the provider's lane holds both of its domains to one rate.
    zone = """
a.test.                60 IN MX 10 mx1.provider.test.
b.test.                60 IN MX 10 MX2.Provider.test.
mx1.provider.test.     60 IN A 127.0.0.1
mx2.provider.test.     60 IN A 127.0.0.1
other.test.            60 IN MX 10 mx.other.test.
mx.other.test.         60 IN A 127.0.0.1
"""
    dns = DnsServer(tmp_path, zone)
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    rate, each = 10, 15
    relay = make_relay(delivery=f"port = {port}", extra=f"""
[dns]
servers = ["127.0.0.1:{dns.port}"]

[shaping."mx:provider.test"]
max_message_rate = "{rate}/s"
""")
    try:
        rcpts = [f"user{n}@{domain}" for n in range(each) for domain in ("a.test", "b.test")]
        submit(relay.smtp_port, rcpts + [f"user{n}@other.test" for n in range(each)])
        messages = sink.wait_for(3 * each, timeout=60)
        provider = sorted(meta["time"] for meta, _ in messages
                          if not meta["rcpt_to"][0].endswith("@other.test"))
        other = sorted(meta["time"] for meta, _ in messages
                       if meta["rcpt_to"][0].endswith("@other.test"))
        # One rate for both domains together (each alone at the rate would make it double).
        measured = (len(provider) - 3) / (provider[-1] - provider[2])
        assert rate * 0.9 <= measured <= rate * 1.1, measured
        assert other[-1] < provider[len(provider) // 2]  # not held back by the provider's lane
        shown = lane(relay, "mx:provider.test")
        assert shown["configured"] and shown["message_rate"] == rate
        assert lane(relay, "a.test") is None and lane(relay, "b.test") is None
    finally:
        sink.stop()
        dns.stop()
