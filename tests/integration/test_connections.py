"""Many concurrent inbound connections through the real binary."""
import resource
import selectors
import socket

import pytest

from conftest import send_message

# More connections than the soft open-files limit most shells and container runtimes give a
# process (1024), and relayq's own files (queue, loops, HTTP) come on top of them.
CONNECTIONS = 1200
DEFAULT_SOFT_LIMIT = 1024


def read_lines(sockets, count_per_socket=1, timeout=60):
    """Reads `count_per_socket` lines from every socket at once; returns them per socket."""
    selector = selectors.DefaultSelector()
    pending = {s: b"" for s in sockets}
    lines = {s: [] for s in sockets}
    for s in sockets:
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
    try:
        while pending:
            events = selector.select(timeout)
            assert events, f"{len(pending)} connections got no reply within {timeout} s"
            for key, _ in events:
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:
                    lines[s].append(b"<closed>")
                    selector.unregister(s)
                    del pending[s]
                    continue
                pending[s] += data
                while b"\n" in pending[s]:
                    line, pending[s] = pending[s].split(b"\n", 1)
                    lines[s].append(line)
                if len(lines[s]) >= count_per_socket:
                    selector.unregister(s)
                    del pending[s]
    finally:
        selector.close()
    return [lines[s] for s in sockets]


@pytest.fixture
def low_soft_fd_limit():
    """Children started meanwhile get the usual soft limit of 1024; this process may use its
    hard limit for its own sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 200:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for {CONNECTIONS} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (DEFAULT_SOFT_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_more_connections_than_the_default_soft_fd_limit(make_relay, low_soft_fd_limit):
    relay = make_relay(listener_extra=f"max_connections = {CONNECTIONS + 100}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # for this test's own sockets
    held = []
    try:
        for _ in range(CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", relay.smtp_port), timeout=30))
        # Every one is greeted (none dropped at accept), and every one is served.
        banners = read_lines(held)
        refused = [lines[0] for lines in banners if not lines[0].startswith(b"220 ")]
        assert not refused, f"{len(refused)} of {CONNECTIONS} connections not greeted: {refused[:3]}"
        for s in held:
            s.setblocking(True)
            s.sendall(b"NOOP\r\n")
        replies = read_lines(held)
        assert all(lines[0].startswith(b"250 ") for lines in replies)
        # A message still goes through while they are all open.
        send_message(relay.smtp_port, ["rcpt@example.org"], "sender@example.test",
                     b"Subject: busy\r\n\r\nhello\r\n")
    finally:
        for s in held:
            s.close()
    # Closed connections give their slots back: mail flows as before.
    send_message(relay.smtp_port, ["rcpt@example.org"], "sender@example.test", b"Subject: after\r\n\r\nbye\r\n")
    assert relay.stop() == 0
