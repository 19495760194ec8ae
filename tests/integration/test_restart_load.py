"""A restart on a full queue: relayq takes new mail at once and loads its due index in the
background; whatever arrives during the load and everything loaded is delivered exactly once."""
import re
import smtplib
import threading

from conftest import Relay, Sink, free_port, queued_id, send_message, wait_until

QUEUED = 1500
NEW = 60


def body(kind, n):
    return f"Subject: {kind} {n}\r\nX-Test: {kind}-{n}\r\n\r\nHello.\r\n".encode()


def send_many(port, kind, count, clients=6):
    """`count` messages over `clients` parallel connections; the queue ids they got."""
    ids = []
    lock = threading.Lock()

    def client(numbers):
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            smtp.ehlo("client.test")
            for n in numbers:
                smtp.mail("sender@sender.test")
                smtp.rcpt("r@example.org")
                code, reply = smtp.data(body(kind, n))
                assert code == 250, reply
                with lock:
                    ids.append(queued_id(reply))

    threads = [threading.Thread(target=client, args=(range(k, count, clients),)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == count
    return ids


def test_new_mail_during_the_background_load_and_every_loaded_message_delivered(tmp_path):
    # First life: the smarthost is a closed port, so every message is tried once and deferred
    # (for 2 s, so that all are due again by the time the relay comes back).
    workdir = tmp_path / "relay"
    first = Relay(workdir, delivery='smarthost = "127.0.0.1:9"',
                  extra='[retry]\ninitial = "2s"\nfactor = 1.0\njitter = 0.0\n').start()
    queued = send_many(first.smtp_port, "queued", QUEUED)
    wait_until(lambda: first.log_text().count("status=deferred") >= QUEUED, timeout=60,
               what="every message deferred once")
    assert first.stop() == 0

    # Second life on the same queue, delivering to a sink. New mail is sent the moment the
    # listener answers, while the due index may still be loading.
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    try:
        second = Relay(workdir, delivery=f'smarthost = "127.0.0.1:{port}"',
                       extra='[retry]\ninitial = "2s"\nfactor = 1.0\njitter = 0.0\n').start()
        try:
            fresh = [send_message(second.smtp_port, ["r@example.org"], "sender@sender.test", body("new", n))
                     for n in range(NEW)]
            sink.wait_for(QUEUED + NEW, timeout=120)
            wait_until(lambda: second.log_text().count("status=sent") >= QUEUED + NEW,
                       what="every delivery logged")
            # The first life logged an empty load; the second finds every deferred message.
            loads = re.findall(r"event=queue_loaded due_recipients=(\d+)", second.log_text())
            assert [int(n) for n in loads] == [0, QUEUED]
        finally:
            assert second.stop() == 0
        messages = sink.messages()
    finally:
        sink.stop()
    # Exactly once each: no message of the queue is lost or sent twice, and the new ones too.
    tags = sorted(re.search(rb"X-Test: (\S+)", content).group(1).decode() for _, content in messages)
    assert tags == sorted([f"queued-{n}" for n in range(QUEUED)] + [f"new-{n}" for n in range(NEW)])
    assert second.inspect() == []  # delivered and gone
    assert len(set(queued) | set(fresh)) == QUEUED + NEW
