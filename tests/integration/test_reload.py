"""SIGHUP while mail flows: a new listener opens, a new retry schedule applies, nothing is lost
or duplicated, and a broken config is refused with the old one kept."""
import re
import signal
import smtplib
import threading
import time

from conftest import wait_until, Sink, free_port, queued_id

BODY = "Subject: reload {n}\r\nMessage-ID: <reload-{n}@client.test>\r\n\r\nbody {n}\r\n"


def config_text(base, sink_port, slow_port, retry_initial, second_port=None):
    """The fixture's config with routes to the two sinks, a retry schedule, and maybe a second
    listener."""
    text = base
    text = re.sub(r"\[delivery\]\n[^\[]*", "[delivery]\nmax_connections_per_destination = 4\n\n", text)
    text += f"""
[routes."a.test"]
nexthop = "127.0.0.1:{sink_port}"

[routes."slow.test"]
nexthop = "127.0.0.1:{slow_port}"

[retry]
initial = "{retry_initial}"
factor = 1.0
jitter = 0.0
"""
    if second_port:
        text += f'\n[[listener]]\naddress = "127.0.0.1:{second_port}"\n'
    return text


def send(port, n, rcpt="r@a.test"):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        assert smtp.mail("sender@client.test")[0] == 250
        assert smtp.rcpt(rcpt)[0] == 250
        code, reply = smtp.data(BODY.format(n=n))
        assert code == 250, reply
        return queued_id(reply)


def reloads(relay, kind):
    return len(re.findall(f"event={kind}\\b", relay.log_text()))


def test_reload_while_mail_flows(make_relay, tmp_path):
    sink_port, slow_port, second_port = free_port(), free_port(), free_port()
    sink = Sink(tmp_path, "127.0.0.1", sink_port)
    slow = Sink(tmp_path, "127.0.0.1", slow_port, replies={"data": "451 4.3.0 not now"})
    relay = make_relay()
    base = relay.config_path.read_text()
    relay.config_path.write_text(config_text(base, sink_port, slow_port, "1h"))
    relay.stop()
    relay.start()
    try:
        # Mail flows from two clients while the config is reloaded.
        stop, sent, lock = threading.Event(), [], threading.Lock()

        def client(offset):
            n = offset
            while not stop.is_set() and n < offset + 150:
                send(relay.smtp_port, n)
                with lock:
                    sent.append(n)
                n += 1

        threads = [threading.Thread(target=client, args=(k * 1000,)) for k in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        relay.config_path.write_text(config_text(base, sink_port, slow_port, "1s", second_port))
        relay.process.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(relay, "reloaded") == 1, what="reload")
        for t in threads:
            t.join(timeout=60)

        # The new listener answers.
        send(second_port, 5000)
        # The new schedule applies: a deferred message is retried after 1 s, not 1 h.
        send(relay.smtp_port, 6000, rcpt="x@slow.test")
        wait_until(lambda: relay.log_text().count("status=deferred") >= 2, timeout=10,
                   what="retry on the new 1 s schedule")

        # A broken config is refused; the old one keeps working.
        relay.config_path.write_text("[server\n")
        relay.process.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(relay, "reload_refused") == 1, what="refusal")
        send(second_port, 7000)

        # Nothing lost, nothing duplicated.
        expected = len(sent) + 2
        messages = sink.wait_for(expected, timeout=60)
        ids = [re.search(rb"Message-ID: <(reload-\d+)@", raw).group(1) for _, raw in messages]
        assert len(ids) == len(set(ids)) == expected
        assert relay.stop() == 0
    finally:
        sink.stop()
        slow.stop()


def test_signals_right_after_the_port_opens_are_handled(make_relay):
    """A SIGHUP as soon as the port answers (a config manager reloading a service it just
    started) reloads; a SIGTERM just as soon stops cleanly. Neither kills relayq outright."""
    for attempt in range(5):
        relay = make_relay()
        relay.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "event=reloaded" in relay.log_text() or relay.process.poll() is not None,
                   10, "reload")
        assert relay.process.poll() is None, f"attempt {attempt}: SIGHUP killed relayq"
        assert relay.stop() == 0
