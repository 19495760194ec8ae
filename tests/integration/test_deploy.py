"""deploy/ checked by real tools: promtool (config, rules, rule unit tests, every dashboard query),
systemd-analyze (verify, security), systemd-sysusers, relayq check-config on every config we ship,
yamllint, the Kubernetes API models of the official Python client, apt-cache and dpkg for the
container build file, and the health check command run against a real relay."""
import json
import os
import re
import shutil
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import RELAYQ_BIN

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES = DEPLOY / "kubernetes"
EXAMPLE = DEPLOY / "relayq.example.toml"
CONTAINER_CONFIG = DEPLOY / "container" / "relayq.toml"
CONTAINERFILE = DEPLOY / "Containerfile"
UNIT = DEPLOY / "relayq.service"
DASHBOARD = DEPLOY / "grafana" / "relayq-dashboard.json"

# shared/CONTRACT.md, "Metrics": always present, at zero before the first event.
CONTRACT_METRICS = {
    "relayq_messages_received_total": "counter",
    "relayq_messages_rejected_total": "counter",
    "relayq_recipients_delivered_total": "counter",
    "relayq_recipients_deferred_total": "counter",
    "relayq_recipients_bounced_total": "counter",
    "relayq_queue_messages": "gauge",
    "relayq_queue_oldest_message_age_seconds": "gauge",
    "relayq_accept_duration_seconds": "histogram",
    "relayq_delivery_duration_seconds": "histogram",
    "relayq_time_in_queue_seconds": "histogram",
    "relayq_smtp_connections": "gauge",
    "relayq_policy_results_total": "counter",
    "relayq_outbound_replies_total": "counter",
}


def run(command, timeout=120, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def tool(name):
    """The path of a tool that deploy/debian-packages.txt installs; its absence is a failure."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make deps` (deploy/debian-packages.txt)")
    return path


def check_config(path):
    return run([RELAYQ_BIN, "check-config", "--config", str(path)], timeout=30)


def configmap_config():
    docs = [d for d in yaml.safe_load_all((KUBERNETES / "configmap.yaml").read_text()) if d]
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    return configmap["data"]["relayq.toml"]


def kubernetes_objects():
    """(file name, document) for every Kubernetes object in deploy/kubernetes."""
    objects = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None and doc.get("kind") != "Kustomization":
                objects.append((path.name, doc))
    return objects


def the(kind, name=None):
    found = [d for _, d in kubernetes_objects()
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# --- Prometheus ------------------------------------------------------------------------------

def test_promtool_check_config():
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_check_rules():
    result = run([tool("promtool"), "check", "rules", str(PROMETHEUS / "alerts.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout + result.stderr


def test_alerts_fire_as_intended():
    """alerts_test.yml: each alert fires on a series that should trigger it, after its `for`,
    and not on a similar one that should not (held backlog, low bounce share, healthy target)."""
    result = run([tool("promtool"), "test", "rules", str(PROMETHEUS / "alerts_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_the_operational_failures():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    alerts = {rule["alert"]: rule for rule in rules}
    assert set(alerts) == {"RelayqDown", "RelayqQueueGrowing", "RelayqOldestMessageOld",
                           "RelayqBounceRateHigh", "RelayqQueueStoreRefusingWrites"}
    assert alerts["RelayqQueueStoreRefusingWrites"]["expr"] == "relayq_queue_store_refusing_writes == 1"
    assert "up" in alerts["RelayqDown"]["expr"] and "== 0" in alerts["RelayqDown"]["expr"]
    assert "relayq_queue_messages" in alerts["RelayqQueueGrowing"]["expr"]
    assert "[30m]" in alerts["RelayqQueueGrowing"]["expr"]
    assert re.search(r"relayq_queue_oldest_message_age_seconds > 4 \* 3600",
                     alerts["RelayqOldestMessageOld"]["expr"])
    bounce = alerts["RelayqBounceRateHigh"]["expr"]
    assert "relayq_recipients_bounced_total" in bounce and "relayq_recipients_delivered_total" in bounce
    assert bounce.rstrip().endswith("> 0.1")
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert "for" in rule, name


def test_scrape_targets_match_the_deployments():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # systemd hosts: the example config's metrics.listen.
    example = tomllib.loads(EXAMPLE.read_text())
    (static,) = jobs["relayq"]["static_configs"]
    assert [port_of(t) for t in static["targets"]] == [port_of(example["metrics"]["listen"])]
    assert jobs["relayq"].get("metrics_path", "/metrics") == "/metrics"
    # Kubernetes: the SRV records of the headless Service's port named "metrics".
    statefulset = the("StatefulSet")
    headless = the("Service", statefulset["spec"]["serviceName"])
    namespace = headless["metadata"]["namespace"]
    (dns,) = jobs["relayq-kubernetes"]["dns_sd_configs"]
    assert dns["type"] == "SRV"
    assert dns["names"] == [f"_metrics._tcp.{headless['metadata']['name']}.{namespace}.svc.cluster.local"]
    assert "metrics" in [p["name"] for p in headless["spec"]["ports"]]


# --- Grafana ---------------------------------------------------------------------------------

def dashboard_queries():
    """(panel title, refId, expr) for every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["refId"], target["expr"]))
    return queries


def concrete(expr):
    """A dashboard expression with Grafana's variables replaced, as Prometheus would get it."""
    expr = re.sub(r"\$__(rate_)?interval", "1m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def exported_metric_names(metrics_text):
    """Series names a /metrics exposition can have: families, and histogram series."""
    names = set()
    for line in metrics_text.splitlines():
        match = re.match(r"# TYPE (\S+) (\S+)", line)
        if match:
            name, kind = match.groups()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_dashboard_is_valid_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            # Every variable used is defined.
            for variable in re.findall(r"\$\{?(\w+)\}?", target["expr"]):
                assert variable.startswith("__") or variable in variables, (panel["title"], variable)
    # No two panels overlap.
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_dashboard_uses_only_metrics_relayq_exports_and_covers_the_contract(relay):
    metrics_text = urllib.request.urlopen(
        f"http://127.0.0.1:{relay.metrics_port}/metrics", timeout=10).read().decode()
    exported = exported_metric_names(metrics_text)
    for name, kind in CONTRACT_METRICS.items():
        assert re.search(rf"^# TYPE {name} {kind}$", metrics_text, re.M), f"{name} ({kind}) not exported"
    used = set()
    for title, ref, expr in dashboard_queries():
        names = set(re.findall(r"\brelayq_[a-z_]+", expr))
        assert names or re.search(r"\bup\{", expr), f"{title}/{ref}: no relayq metric in {expr}"
        unknown = names - exported
        assert not unknown, f"{title}/{ref}: {sorted(unknown)} are not exported by relayq"
        used |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
    assert not set(CONTRACT_METRICS) - used, f"not on the dashboard: {set(CONTRACT_METRICS) - used}"
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        unknown = set(re.findall(r"\brelayq_[a-z_]+", rule["expr"])) - exported
        assert not unknown, f"alert {rule['alert']} uses {sorted(unknown)}, not exported"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses every dashboard expression, as a recording rule."""
    rules = [{"record": f"dashboard:query_{i}", "expr": concrete(expr)}
             for i, (_, _, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout + result.stderr


# --- systemd ---------------------------------------------------------------------------------

def unit_settings(text):
    """{(section, key): [values]} of a unit file; a key may repeat."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return path


def verify_complaints(unit_path):
    """Lines of `systemd-analyze verify` about the unit file itself. Complaints about the host
    (other units, no running systemd) do not name it; ours do, as NAME:LINE: or NAME: ...."""
    result = run([systemd_analyze(), "verify", str(unit_path)], env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    return [line for line in (result.stdout + result.stderr).splitlines() if unit_path.name in line]


def test_systemd_unit_verifies(tmp_path):
    # The binary exists here at RELAYQ_BIN, not at /usr/local/bin: point the copy at it.
    unit = tmp_path / "relayq.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/relayq", str(Path(RELAYQ_BIN).resolve())))
    assert verify_complaints(unit) == []
    # The filter sees the unit's own mistakes: a misspelt key and a bad value are reported.
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHome=yess\nProtectHomee=yes"))
    complaints = "\n".join(verify_complaints(broken))
    assert "yess" in complaints and "ProtectHomee" in complaints, complaints


def test_systemd_unit_is_hardened_and_matches_the_example_config():
    text = UNIT.read_text()
    settings = unit_settings(text)

    def one(key, section="Service"):
        values = settings.get((section, key))
        assert values, f"{key}= missing"
        return values[-1]

    assert one("User") == "relayq" and one("Group") == "relayq" and one("DynamicUser") == "no"
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "PrivateDevices": "yes", "NoNewPrivileges": "yes", "Restart": "on-failure",
                       "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                       "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "KillSignal": "SIGTERM",
                       "StateDirectory": "relayq", "ConfigurationDirectory": "relayq",
                       "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():
        assert one(key) == value, key
    assert "@system-service" in settings[("Service", "SystemCallFilter")]
    assert int(one("LimitNOFILE")) >= 65536
    assert one("ExecStart") == "/usr/local/bin/relayq serve --config /etc/relayq/relayq.toml"
    assert settings[("Service", "ExecReload")][-1] == "/bin/kill -HUP $MAINPID"
    # The queue is in the state directory, the only writable place under ProtectSystem=strict.
    example = tomllib.loads(EXAMPLE.read_text())
    assert example["queue"]["path"].startswith(f"/var/lib/{one('StateDirectory')}/")
    assert example["listener"][0]["address"].endswith(":25")
    # systemd waits longer than relayq's own shutdown deadline before SIGKILL.
    stop = int(re.fullmatch(r"(\d+)s", one("TimeoutStopSec")).group(1))
    shutdown = int(re.fullmatch(r"(\d+)s", example["server"]["shutdown_timeout"]).group(1))
    assert stop >= shutdown + 10


def test_systemd_security_exposure_is_low(tmp_path):
    analyze = systemd_analyze()
    unit = tmp_path / "relayq.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/relayq", str(Path(RELAYQ_BIN).resolve())))
    result = run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                 env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security review")
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_sysusers_creates_the_units_user(tmp_path):
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed (Debian package systemd)")
    (tmp_path / "etc").mkdir()
    conf = (DEPLOY / "relayq.sysusers.conf").read_text()
    result = run([sysusers, f"--root={tmp_path}", "--dry-run", "-"], input=conf)
    assert result.returncode == 0, result.stderr
    assert "Creating user 'relayq'" in result.stdout + result.stderr
    assert "Creating group 'relayq'" in result.stdout + result.stderr


# --- Configs ---------------------------------------------------------------------------------

SETTING = re.compile(r'^# ((\[\[?[A-Za-z0-9_.:"-]+\]\]?)|([a-z_]+ = .+))$')


def commented_settings(text):
    """Runs of commented-out settings ('# key = value', '# [table]'): [(first index, last index)]."""
    lines = text.splitlines()
    units, i = [], 0
    while i < len(lines):
        if not SETTING.match(lines[i].strip()):
            i += 1
            continue
        start = i
        while i < len(lines) and SETTING.match(lines[i].strip()):
            i += 1
        units.append((start, i - 1))
    return units


def check_commented_settings(text, tmp_path):
    """Each run of commented-out settings, uncommented alone, gives a valid config."""
    lines = text.splitlines()
    units = commented_settings(text)
    for n, (first, last) in enumerate(units):
        variant = list(lines)
        for k in range(first, last + 1):
            variant[k] = re.sub(r"^(\s*)# ", r"\1", variant[k])
        path = tmp_path / f"variant{n}.toml"
        path.write_text("\n".join(variant) + "\n")
        result = check_config(path)
        shown = "\n".join(lines[first:last + 1])
        assert result.returncode == 0, f"{shown}\n-> {result.stderr}"
    return units


def test_example_config_passes_check_config():
    result = check_config(EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_example_config_commented_settings_are_true(tmp_path):
    assert len(check_commented_settings(EXAMPLE.read_text(), tmp_path)) >= 5


def test_example_config_documents_every_key():
    """Every key the parser reads (mta/src/config/) appears in the example, set or commented."""
    source = "".join(path.read_text() for path in sorted((REPO / "mta" / "src" / "config").glob("*.cpp")))
    keys = set(re.findall(r"\bread(?:_required|_each|_tables?|_named_tables)?\(\s*\"([a-z_]+)\"", source))
    assert len(keys) >= 40, f"the key pattern no longer matches mta/src/config/: {sorted(keys)}"
    example = EXAMPLE.read_text()
    missing = [key for key in sorted(keys)
               if not re.search(rf"^(# )?{key} = ", example, re.M)
               and not re.search(rf"^(# )?\[\[?([\w\".-]*\.)?{key}[\].]", example, re.M)]
    assert not missing, f"keys relayq reads that deploy/relayq.example.toml does not describe: {missing}"


def test_container_and_kubernetes_configs_pass_check_config(tmp_path):
    assert check_config(CONTAINER_CONFIG).returncode == 0, check_config(CONTAINER_CONFIG).stderr
    path = tmp_path / "relayq.toml"
    path.write_text(configmap_config())
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    check_commented_settings(configmap_config(), tmp_path)


def test_yamllint():
    files = sorted(str(p) for p in DEPLOY.rglob("*.y*ml"))
    result = run([tool("yamllint"), "--strict", "-d",
                  "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}",
                  *files])
    assert result.returncode == 0, result.stdout + result.stderr


# --- Container -------------------------------------------------------------------------------

def containerfile_instructions():
    """[(stage index, INSTRUCTION, arguments)] with continuation lines joined."""
    instructions, current, stage = [], "", -1
    for line in CONTAINERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, args = current.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append((stage, keyword.upper(), " ".join(args.split())))
        current = ""
    return instructions


def runtime_packages():
    """Packages that the last stage's apt-get install names."""
    last = max(stage for stage, _, _ in containerfile_instructions())
    packages = []
    for stage, keyword, args in containerfile_instructions():
        if stage == last and keyword == "RUN" and "apt-get install" in args:
            install = args.split("apt-get install", 1)[1].split("&&")[0]
            packages += [w for w in install.split() if not w.startswith("-")]
    return packages


def test_containerfile_structure():
    instructions = containerfile_instructions()
    known = {"FROM", "RUN", "COPY", "ENV", "USER", "WORKDIR", "VOLUME", "EXPOSE", "STOPSIGNAL",
             "HEALTHCHECK", "ENTRYPOINT", "CMD", "ARG", "LABEL"}
    assert {k for _, k, _ in instructions} <= known
    froms = [args for _, k, args in instructions if k == "FROM"]
    assert froms[0] == "debian:12 AS build" and froms[-1].startswith("debian:12")
    stages = {args.split(" AS ")[1] for args in froms if " AS " in args}
    for stage, keyword, args in instructions:
        if keyword != "COPY":
            continue
        words = args.split()
        source = [w for w in words if not w.startswith("--")][0]
        if words[0].startswith("--from="):
            assert words[0].split("=", 1)[1] in stages, args
        else:
            assert (REPO / source).exists(), f"COPY {source}: not in the build context"
    final = {k: args for s, k, args in instructions if s == len(froms) - 1}
    user = final["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "the runtime user must be numeric and non-root"
    assert the("StatefulSet")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)
    assert final["VOLUME"] == "/var/lib/relayq"
    assert tomllib.loads(CONTAINER_CONFIG.read_text())["queue"]["path"].startswith("/var/lib/relayq/")
    assert set(final["EXPOSE"].split()) == {"25", "587", "9464"}
    assert json.loads(final["ENTRYPOINT"]) == ["/usr/local/bin/relayq", "serve"]
    config_path = json.loads(final["CMD"])[1]
    assert f"deploy/container/relayq.toml {config_path}" in [a for _, k, a in instructions if k == "COPY"]
    assert "/healthz" in final["HEALTHCHECK"]


def test_containerfile_packages_exist_in_debian():
    apt_cache = tool("apt-cache")
    if "Candidate: (none)" in run([apt_cache, "policy", "libc6"]).stdout or \
            "Candidate" not in run([apt_cache, "policy", "libc6"]).stdout:
        pytest.skip("apt lists are empty here: run apt-get update")
    build = [line.split("#")[0].strip() for line in (DEPLOY / "debian-packages.txt").read_text().splitlines()]
    packages = sorted(set(runtime_packages()) | {p for p in build if p})
    assert "libuv1" in packages and "curl" in packages
    output = run([apt_cache, "policy", *packages]).stdout
    candidates = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", output, re.M))
    missing = [p for p in packages if candidates.get(p, "(none)") == "(none)"]
    assert not missing, f"not installable from Debian: {missing}"


def test_runtime_stage_installs_every_library_relayq_links():
    """ldd of the binary built here, each library's Debian package (dpkg -S), against the
    runtime stage's list: a missing one would make the image's relayq fail to start."""
    ldd = run(["ldd", RELAYQ_BIN]).stdout
    libraries = re.findall(r"=> (/\S+)", ldd)
    assert libraries, ldd
    packages = set()
    for library in libraries:
        real = os.path.realpath(library)
        candidates = [library, "/usr" + library, real, re.sub(r"^/usr", "", real)]
        for candidate in candidates:
            result = run(["dpkg", "-S", candidate])
            if result.returncode == 0:
                packages.add(result.stdout.split(":")[0])
                break
        else:
            pytest.fail(f"no Debian package owns {library}")
    # In every Debian image; sanitizer runtimes only in the ASan test build.
    base = {"libc6", "libgcc-s1"}
    needed = {p for p in packages - base if not re.match(r"lib(a|ub|l|t)san\d", p)}
    missing = needed - set(runtime_packages())
    assert not missing, f"add to the runtime stage of deploy/Containerfile: {sorted(missing)}"


def healthcheck_command(command, admin_port):
    """A health check command aimed at a test relay's admin port instead of 8025."""
    return [word.replace("127.0.0.1:8025", f"127.0.0.1:{admin_port}") for word in command]


def test_health_checks_pass_against_a_running_relay(relay):
    """The container HEALTHCHECK and the Kubernetes probes, run as written against a relay."""
    final = {k: a for s, k, a in containerfile_instructions() if k == "HEALTHCHECK"}
    container = json.loads(final["HEALTHCHECK"].split(" CMD ", 1)[1])
    container_admin = tomllib.loads(CONTAINER_CONFIG.read_text())["admin"]["listen"]
    assert f"http://{container_admin}/healthz" in container
    (pod,) = the("StatefulSet")["spec"]["template"]["spec"]["containers"]
    probes = [pod[p]["exec"]["command"] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    pod_admin = tomllib.loads(configmap_config())["admin"]["listen"]
    for probe in probes:
        assert f"http://{pod_admin}/healthz" in probe
    tool("curl")
    for command in [container, *probes]:
        result = run(healthcheck_command(command, relay.admin_port), timeout=30)
        if result.returncode == 7:  # curl: could not connect
            pytest.skip("this relayq build has no admin API listening yet")
        assert result.returncode == 0, (command, result.stderr)
    # And fails when nothing answers.
    relay.stop()
    assert run(healthcheck_command(container, relay.admin_port), timeout=30).returncode != 0


# --- Kubernetes ------------------------------------------------------------------------------

def model_differences(document, model):
    """Fields of `document` that the API model dropped (unknown or misspelt) or changed."""
    out = []
    if isinstance(document, dict) and isinstance(model, dict):
        for key, value in document.items():
            out += [f".{key}: unknown field"] if key not in model else \
                [f".{key}{d}" for d in model_differences(value, model[key])]
    elif isinstance(document, list) and isinstance(model, list) and len(document) == len(model):
        for i, (a, b) in enumerate(zip(document, model)):
            out += [f"[{i}]{d}" for d in model_differences(a, b)]
    elif document != model:
        out.append(f": {document!r} became {model!r}")
    return out


def test_kubernetes_manifests_match_the_api_schema():
    """Each object through the official client's models (python3-kubernetes): required fields
    present, and nothing dropped on the way back, so no field is unknown or misspelt."""
    try:
        from kubernetes.client import ApiClient
    except ImportError:
        pytest.fail("python3-kubernetes is not installed: run `make deps`")
    api = ApiClient()

    def roundtrip(doc):
        model = "V1" + doc["kind"]
        assert doc["apiVersion"] in ("v1", "apps/v1", "policy/v1"), doc["apiVersion"]
        return model_differences(doc, api.sanitize_for_serialization(api._ApiClient__deserialize(doc, model)))

    objects = kubernetes_objects()
    kinds = sorted(doc["kind"] for _, doc in objects)
    assert kinds == ["ConfigMap", "Namespace", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    for name, doc in objects:
        assert doc["metadata"]["name"], name
        assert roundtrip(doc) == [], (name, doc["kind"])
    # The check itself: a misspelt field is found, a missing required one refused.
    statefulset = json.loads(json.dumps(the("StatefulSet")))
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert roundtrip(statefulset) == [".spec.template.spec.containers[0].readinesProbe: unknown field"]
    del statefulset["spec"]["selector"]
    with pytest.raises(ValueError):
        roundtrip(statefulset)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files


def test_kubernetes_objects_fit_together():
    statefulset = the("StatefulSet")
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    namespaces = {doc["metadata"].get("namespace") for _, doc in kubernetes_objects() if doc["kind"] != "Namespace"}
    assert namespaces == {the("Namespace")["metadata"]["name"]}
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    # The headless Service governs the StatefulSet; both Services select its pods and name
    # container ports that exist.
    headless = the("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    smtp = the("Service", "relayq")
    assert {p["port"] for p in smtp["spec"]["ports"]} == {25, 587}
    assert smtp["spec"]["externalTrafficPolicy"] == "Local"  # client addresses for relay rules
    for service in (headless, smtp):
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, port
    pdb = the("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    # The config in the ConfigMap, mounted where --config says, listens where the ports say.
    config = tomllib.loads(configmap_config())
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_volume = [v for v in pod["volumes"] if v["name"] == "config"][0]
    assert config_volume["configMap"]["name"] == the("ConfigMap")["metadata"]["name"]
    assert container["args"] == ["--config", f"{mounts['config']}/relayq.toml"]
    assert [port_of(listener["address"]) for listener in config["listener"]] == [ports["smtp"]]
    assert f'# address = "0.0.0.0:{ports["submission"]}"' in configmap_config()
    assert config["metrics"]["listen"] == f"0.0.0.0:{ports['metrics']}"
    assert config["admin"]["listen"].startswith("127.0.0.1:")  # reached by exec probes only

    # Each pod's queue is on its own volume from the claim template.
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert config["queue"]["path"].startswith(mounts[claim["metadata"]["name"]] + "/")

    # Termination: the preStop sleep, then relayq's shutdown deadline, fit in the grace period.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown = int(re.fullmatch(r"(\d+)s", config["server"]["shutdown_timeout"]).group(1))
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + shutdown + 10

    # Non-root, no capabilities (port 25 is the Service's, the pod listens above 1024).
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert all(port > 1024 for port in ports.values())
