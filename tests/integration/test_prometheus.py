"""Acceptance: a real Prometheus server (Debian's prometheus) scrapes a relay with the scrape
config of deploy/prometheus/prometheus.yml and the alert rules of alerts.yml, mail goes through
relayq to an SMTP sink, and Prometheus's HTTP API shows the counts; every dashboard query runs
on it; `promtool check metrics` accepts relayq's exposition without a warning."""
import json
import math
import shutil
import smtplib
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import Sink, free_port, queued_id, wait_for_port
from test_deploy import PROMETHEUS, concrete, dashboard_queries

MESSAGES = 12
WAIT = 60.0  # seconds, for anything Prometheus has to see


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make deps` (Debian package prometheus)")
    return path


class PrometheusServer:
    """prometheus on a loopback port, scraping one relay every second, storage in tmp."""

    def __init__(self, workdir: Path, target: str):
        deployed = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
        (job,) = [j for j in deployed["scrape_configs"] if j["job_name"] == "relayq"]
        job = dict(job, scrape_interval="1s", scrape_timeout="1s",
                   static_configs=[{"targets": [target], "labels": job["static_configs"][0].get("labels", {})}])
        config = dict(deployed, scrape_configs=[job],
                      rule_files=[str(PROMETHEUS / f) for f in deployed["rule_files"]],
                      **{"global": dict(deployed["global"], scrape_interval="1s", evaluation_interval="1s")})
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={self.config_path}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=30, process=self.process)
        self.wait_until(lambda: self.get("/-/ready", raw=True) is not None, "ready")

    def get(self, path, raw=False, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
        except OSError:
            return None
        return body if raw else json.loads(body)

    def query(self, expr):
        """The instant vector result of `expr`; raises on a query error."""
        reply = self.get("/api/v1/query", query=expr)
        assert reply is not None and reply["status"] == "success", (expr, reply)
        return reply["data"]

    def value(self, expr):
        result = self.query(expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_until(self, condition, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text(errors='replace')}")
            result = condition()
            if result:
                return result
            time.sleep(0.5)
        raise TimeoutError(f"prometheus: {what} not seen within {timeout}s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    sink = Sink(tmp_path, "127.0.0.1", port)
    sink.port = port
    yield sink
    sink.stop()


@pytest.fixture
def relay(make_relay, sink):
    """A relay that delivers everything to the sink."""
    return make_relay(delivery=f'smarthost = "127.0.0.1:{sink.port}"')


@pytest.fixture
def prometheus(tmp_path, relay):
    server = PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{relay.metrics_port}")
    yield server
    server.stop()


def test_prometheus_scrapes_the_relay_and_counts_the_mail(relay, sink, prometheus):
    # The target is up with the deployed job name before any mail.
    prometheus.wait_until(lambda: prometheus.value('up{job="relayq"}') == 1, "up == 1")
    assert prometheus.value('sum(relayq_messages_received_total{job="relayq"})') == 0

    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        for n in range(MESSAGES):
            assert smtp.mail("sender@client.test")[0] == 250
            assert smtp.rcpt(f"rcpt{n}@example.org")[0] == 250
            code, reply = smtp.data(f"Subject: metrics {n}\r\n\r\nHello {n}.\r\n".encode())
            assert code == 250, reply
            queued_id(reply)
    assert len(sink.wait_for(MESSAGES, timeout=WAIT)) == MESSAGES

    received = 'sum(relayq_messages_received_total{job="relayq"})'
    delivered = 'sum(relayq_recipients_delivered_total{job="relayq"})'
    prometheus.wait_until(lambda: prometheus.value(received) == MESSAGES
                          and prometheus.value(delivered) == MESSAGES,
                          f"{received} == {delivered} == {MESSAGES}")
    # Nothing else happened to them, and nothing is left in the queue.
    assert prometheus.value('sum(relayq_recipients_bounced_total{job="relayq"})') == 0
    assert prometheus.value('sum(relayq_outbound_replies_total{job="relayq", class="2xx"})') >= MESSAGES
    prometheus.wait_until(lambda: prometheus.value('sum(relayq_queue_messages{job="relayq"})') == 0,
                          "an empty queue")

    # The deployed alert rules load and evaluate on live data without an error, and none fires.
    def rules_healthy():
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if len(rules) == 5 and all(r["health"] == "ok" for r in rules) else None
    rules = prometheus.wait_until(rules_healthy, "5 alert rules evaluated with health ok")
    assert all(rule["state"] == "inactive" for rule in rules), rules

    # Every dashboard query runs; each gives a series now that mail has flowed.
    for title, ref, expr in dashboard_queries():
        result = prometheus.query(concrete(expr))["result"]
        assert result, f"dashboard panel {title!r} query {ref} is empty: {concrete(expr)}"
        for series in result:
            value = float(series["value"][1])
            assert not math.isinf(value), (title, ref, series)


def test_promtool_check_metrics_accepts_the_exposition(relay, sink):
    # After a delivery, so that every histogram has observations too.
    with smtplib.SMTP("127.0.0.1", relay.smtp_port, timeout=30) as smtp:
        assert smtp.sendmail("sender@client.test", ["rcpt@example.org"],
                             b"Subject: lint\r\n\r\nHi.\r\n") == {}
    sink.wait_for(1, timeout=WAIT)
    text = urllib.request.urlopen(f"http://127.0.0.1:{relay.metrics_port}/metrics", timeout=10).read()
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True,
                            timeout=60)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and output.strip() == "", output
