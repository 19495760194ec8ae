"""SIGKILL in the middle of a stream of messages: every message that got a 250 is in the queue."""
import random
import smtplib
import threading
import time

from conftest import queued_id

CLIENTS = 20
KILLS = 5
BODY = (b"Subject: crash test\r\n\r\n" + b"payload line of a crash test message\r\n" * 100)


def client_loop(port, stop, acknowledged, lock):
    """Sends messages on one connection (reconnecting as needed) until told to stop or the
    relay goes away; records each id the relay acknowledged with 250."""
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.ehlo("crash.test")
                while not stop.is_set():
                    smtp.mail("sender@example.test")
                    smtp.rcpt("rcpt@example.org")
                    code, reply = smtp.data(BODY)
                    if code != 250:
                        return
                    with lock:
                        acknowledged.append(queued_id(reply))
        except (OSError, smtplib.SMTPException):
            return


def test_every_acknowledged_message_survives_sigkill(relay):
    rng = random.Random(7)
    all_acknowledged = []
    for round_number in range(KILLS):
        stop = threading.Event()
        acknowledged, lock = [], threading.Lock()
        threads = [threading.Thread(target=client_loop, args=(relay.smtp_port, stop, acknowledged, lock))
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(0.5 + rng.random())
        relay.kill()  # mid-stream: clients are between commands, in DATA or waiting for the 250
        stop.set()
        for t in threads:
            t.join(timeout=30)
        stored = {e["id"] for e in relay.inspect()}
        missing = [i for i in acknowledged if i not in stored]
        assert acknowledged, f"round {round_number}: no message was acknowledged"
        assert not missing, f"round {round_number}: {len(missing)} acknowledged messages lost"
        all_acknowledged += acknowledged
        relay.start()
    relay.stop()
    stored = {e["id"] for e in relay.inspect()}
    assert set(all_acknowledged) <= stored
    assert len(set(all_acknowledged)) == len(all_acknowledged)
