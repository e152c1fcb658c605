"""The deployment files under deploy/ parse, and agree with the code they deploy.

Docker, Kubernetes and Prometheus do not run here, so these tests check what can be checked
without them: every YAML and JSON file parses; every metric a dashboard or an alert queries is one
`Metrics` exports (in its exposition name); the cluster-wide gauges are never summed across
gateways; every `gpucloud` command line in compose and Kubernetes parses with the real CLI; every
`GPUCLOUD_*` variable is a `Settings` field and its value validates; nginx agrees with the
gateway's limits. `docker compose config` and `promtool` run when they are installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main
import yaml
from pydantic import BaseModel

from gpucloud.cli.main import app
from gpucloud.engines import ENGINE_KINDS, build_engine
from gpucloud.observability.metrics import Metrics
from gpucloud.queue.names import RedisNames
from gpucloud.settings import QueueSettings, RequestLimits, Settings
from gpucloud.worker.main import parse_engine_options

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
MAIN_DASHBOARD = DASHBOARDS / "gpucloud.json"
GPU_DASHBOARD = DASHBOARDS / "gpus.json"

# Per-GPU series gpus.json queries; metrics.py does not export them yet. Labels: worker, gpu.
GPU_METRICS = frozenset(
    {
        "gpucloud_gpu_memory_used_bytes",
        "gpucloud_gpu_memory_total_bytes",
        "gpucloud_gpu_utilization_ratio",
        "gpucloud_gpu_temperature_celsius",
        "gpucloud_gpu_power_watts",
    }
)
# Exported only by the gateway holding the metrics lease: `max` across instances, never `sum`.
LEADER_GAUGES = (
    "gpucloud_queue_depth",
    "gpucloud_workers",
    "gpucloud_worker_slots",
    "gpucloud_worker_running_jobs",
    "gpucloud_model_workers",
)
METRIC_NAME = re.compile(r"\bgpucloud_[a-z0-9_]+\b")
SUMMED_LEADER_GAUGE = re.compile(
    r"\bsum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*(?:" + "|".join(LEADER_GAUGES) + r")\b"
)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
DATASOURCE_UIDS = {"${DS_PROMETHEUS}", "prometheus"}
# Usage errors of the CLI: newer typer vendors click and raises its own subclasses.
CLI_ERRORS = (click.ClickException, getattr(typer, "TyperException", click.ClickException))


# ------------------------------------------------------------------------------------------ helpers


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_yaml(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def compose() -> dict[str, Any]:
    (doc,) = load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(load_yaml(path))
    return docs


def k8s_kind(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def exported_names() -> set[str]:
    """The series names of `Metrics` as the exposition writes them."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name.removesuffix("_total") + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))  # a collapsed row keeps its panels inside


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def metric_names(queries: list[str]) -> set[str]:
    return {name for query in queries for name in METRIC_NAME.findall(query)}


def alert_rules() -> list[dict[str, Any]]:
    (doc,) = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def cli_context(argv: list[str]) -> tuple[str, Any]:
    """Parse a `gpucloud …` command line with the real CLI, without running it.

    Returns the subcommand's path (`"worker"`, `"db upgrade"`) and the parsed click context.
    """
    command: Any = typer.main.get_command(app)
    args, path = list(argv), list[str]()
    while getattr(command, "commands", None) is not None:  # a group (typer may vendor click)
        assert args, f"gpucloud {' '.join(path)} needs a subcommand"
        name = args.pop(0)
        assert name in command.commands, f"gpucloud {' '.join(path)} has no subcommand {name!r}"
        command = command.commands[name]
        path.append(name)
    subcommand = " ".join(path)
    try:
        return subcommand, command.make_context(f"gpucloud {subcommand}", list(args))
    except CLI_ERRORS as exc:
        pytest.fail(f"`gpucloud {subcommand} {' '.join(args)}` does not parse: {exc}")


def check_command_line(argv: list[str]) -> str:
    """Parse `argv`; for a worker, also build its engines from the options. Returns the subcommand."""
    subcommand, ctx = cli_context(argv)
    if subcommand == "worker":
        engine = ctx.params["engine"]
        assert engine in ENGINE_KINDS, f"unknown engine {engine!r}; known: {ENGINE_KINDS}"
        options = parse_engine_options(ctx.params["engine_option"] or [])
        for model in ctx.params["model"]:
            build_engine(engine, model, options)  # ValueError names an unknown or bad option
    return subcommand


def settings_names() -> set[str]:
    """Every GPUCLOUD_* variable `Settings` reads: fields, and nested groups' fields with `__`."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(f"GPUCLOUD_{name.upper()}")
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.update(f"GPUCLOUD_{name.upper()}__{sub.upper()}" for sub in group.model_fields)
    return names


def interpolate(value: str) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, with stand-ins for secrets."""

    def replace(match: re.Match[str]) -> str:
        operator, argument = match.group(2), match.group(3)
        if operator in (":-", "-"):
            return argument
        return "stand-in-secret-0123456789abcdef"

    return INTERPOLATION.sub(replace, value)


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("GPUCLOUD_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def gpucloud_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if "build" in svc or str(svc.get("image", "")).startswith("${IMAGE")
    }


def gpucloud_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in k8s_docs():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            if container["image"].split(":")[0].endswith("gpucloud"):
                yield doc["metadata"]["name"], container


def k8s_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            env.update(k8s_kind("ConfigMap", ref["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "stand-in-secret-0123456789abcdef")
    return env


def nginx_block(text: str, header: str) -> str:
    """The body of the first `header { … }` block of an nginx configuration."""
    start = text.index(header + " {") + len(header) + 2
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise AssertionError(f"unterminated block {header}")


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


# ----------------------------------------------------------------------------------- YAML and JSON


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_yaml(path), f"{path} is empty"


def test_the_deployment_files_exist() -> None:
    for name in (
        "compose.yaml",
        "Dockerfile",
        "README.md",
        "nginx/nginx.conf",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "grafana/dashboards/gpucloud.json",
        "grafana/dashboards/gpus.json",
    ):
        assert (DEPLOY / name).is_file(), name
    assert list((DEPLOY / "grafana/provisioning/datasources").glob("*.yaml"))
    assert list((DEPLOY / "grafana/provisioning/dashboards").glob("*.yaml"))


# -------------------------------------------------------------------------------------- dashboards


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_is_valid(path: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"]
    assert dashboard["title"]
    all_panels = list(panels(dashboard["panels"]))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["current"]["value"] == "prometheus"


def test_main_dashboard_queries_only_exported_metrics() -> None:
    queries = dashboard_queries(json.loads(MAIN_DASHBOARD.read_text(encoding="utf-8")))
    unknown = metric_names(queries) - exported_names()
    assert not unknown, f"gpucloud.json queries series the code does not export: {sorted(unknown)}"


def test_main_dashboard_covers_the_operators_questions() -> None:
    used = metric_names(dashboard_queries(json.loads(MAIN_DASHBOARD.read_text(encoding="utf-8"))))
    for name in (
        "gpucloud_http_requests_total",
        "gpucloud_http_request_duration_seconds_bucket",
        "gpucloud_inference_requests_total",
        "gpucloud_time_to_first_token_seconds_bucket",
        "gpucloud_inter_token_latency_seconds_bucket",
        "gpucloud_queue_wait_seconds_bucket",
        "gpucloud_queue_depth",
        "gpucloud_workers",
        "gpucloud_worker_slots",
        "gpucloud_worker_running_jobs",
        "gpucloud_tokens_total",
        "gpucloud_job_outcomes_total",
        "gpucloud_job_retries_total",
        "gpucloud_rejections_total",
    ):
        assert name in used, name


def test_gpu_dashboard_queries_exactly_the_planned_gpu_metrics() -> None:
    queries = dashboard_queries(json.loads(GPU_DASHBOARD.read_text(encoding="utf-8")))
    assert metric_names(queries) == GPU_METRICS


def test_gpu_dashboard_metrics_are_exported() -> None:
    missing = GPU_METRICS - exported_names()
    if missing == GPU_METRICS:
        pytest.skip(
            "the per-GPU gauges gpus.json queries are not exported by gpucloud.observability.metrics "
            f"yet: {', '.join(sorted(GPU_METRICS))} (labels: worker, gpu)"
        )
    assert not missing, f"gpus.json queries GPU series the code does not export: {sorted(missing)}"


def test_leader_gauges_are_never_summed_across_gateways() -> None:
    queries = [
        *dashboard_queries(json.loads(MAIN_DASHBOARD.read_text(encoding="utf-8"))),
        *(rule["expr"] for rule in alert_rules()),
    ]
    summed = [q for q in queries if SUMMED_LEADER_GAUGE.search(q)]
    assert not summed, f"take max by the gauge's labels before any sum: {summed}"


# -------------------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_gateway_metrics_with_the_admin_key() -> None:
    (config,) = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "gpucloud-gateway"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    credentials_file = job["authorization"]["credentials_file"]
    assert "credentials" not in job["authorization"], "never put the key itself in the file"

    prometheus = compose()["services"]["prometheus"]
    mounted = {
        s.get("target", f"/run/secrets/{s['source']}") if isinstance(s, dict) else f"/run/secrets/{s}"
        for s in prometheus["secrets"]
    }
    assert credentials_file in mounted
    (secret,) = [s for s in prometheus["secrets"] if isinstance(s, dict)]
    assert compose()["secrets"][secret["source"]] == {"environment": "GPUCLOUD_ADMIN_KEY"}

    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]


def test_alerts_are_well_formed_and_query_exported_metrics() -> None:
    rules = alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    used = metric_names([r["expr"] for r in rules])
    unknown = used - exported_names()
    assert not unknown, f"alerts.yml queries series the code does not export: {sorted(unknown)}"
    for name in (
        "gpucloud_queue_depth",
        "gpucloud_model_workers",
        "gpucloud_http_requests_total",
        "gpucloud_job_outcomes_total",
        "gpucloud_time_to_first_token_seconds_bucket",
    ):
        assert name in used, name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_configuration() -> None:
    rules = subprocess.run(
        ["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_grafana_provisioning_matches_the_dashboards() -> None:
    (datasources,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    assert [d["uid"] for d in datasources["datasources"]] == ["prometheus"]
    (providers,) = load_yaml(DEPLOY / "grafana/provisioning/dashboards/gpucloud.yaml")
    (provider,) = providers["providers"]
    grafana = compose()["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]


# ----------------------------------------------------------------------------------------- compose


def test_compose_runs_the_whole_stack() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "gateway", "worker", "nginx", "prometheus", "grafana"):
        assert name in services, name
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "/health" in " ".join(services["gateway"]["healthcheck"]["test"])
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    assert services["gateway"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/metrics" not in json.dumps(services["nginx"].get("ports", []))


def test_compose_hard_codes_no_secret() -> None:
    secret_name = re.compile(r"PASSWORD|SECRET|_KEY$|_TOKEN$")
    required = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")
    for name, service in compose()["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if secret_name.search(key):
                assert required.match(str(value)), f"{name}: {key} must come from the environment"
            if "://" in str(value) and "@" in str(value):  # credentials inside a URL
                userinfo = str(value).split("://", 1)[1].rsplit("@", 1)[0]
                assert required.search(userinfo.split(":", 1)[-1]), f"{name}: {key} embeds a password"
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), f".env.example must leave secrets empty: {line}"


def test_compose_commands_parse_with_the_cli() -> None:
    services = gpucloud_services()
    assert {"gateway", "worker"} <= set(services)
    subcommands = {name: check_command_line(list(svc["command"])) for name, svc in services.items()}
    assert subcommands["gateway"] == "serve"
    assert subcommands["worker"] == "worker"


def test_compose_settings_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    known = settings_names()
    text = COMPOSE.read_text(encoding="utf-8")
    interpolated = {m.group(1) for m in INTERPOLATION.finditer(text)}
    for name, service in gpucloud_services().items():
        env = compose_env(service)
        unknown = {k for k in env if k.startswith("GPUCLOUD_")} - known
        assert not unknown, f"{name}: not Settings fields: {sorted(unknown)}"
        settings_from(env, monkeypatch)  # every value validates
    assert not {v for v in interpolated if v.startswith("GPUCLOUD_")} - known
    example_names = set(
        re.findall(r"^#?\s*(GPUCLOUD_[A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(), re.M)
    )
    assert example_names <= known

    gateway = settings_from(compose_env(compose()["services"]["gateway"]), monkeypatch)
    assert gateway.redis_dsn() is not None
    assert gateway.database_url is not None
    assert not gateway.local_worker_enabled()
    assert gateway.database_url.startswith("postgresql+asyncpg://")


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker client is not installed")
def test_docker_compose_accepts_the_file() -> None:
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.skip(f"`docker compose` is not available here: {version.stderr.strip()}")
    env = {
        **os.environ,
        "GPUCLOUD_ADMIN_KEY": "stand-in-admin-key-0123456789",
        "POSTGRES_PASSWORD": "stand-in",
        "REDIS_PASSWORD": "stand-in",
        "GRAFANA_ADMIN_PASSWORD": "stand-in",
    }
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0 and "Cannot connect to the Docker daemon" in result.stderr:
        pytest.skip("`docker compose config` wants a Docker engine here")
    assert result.returncode == 0, result.stderr


def test_dockerfile_installs_the_package_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install .*\s\.$", text, re.M)
    (user,) = re.findall(r"^USER (\S+)$", text, re.M)
    assert user.split(":")[0] not in ("root", "0")
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    assert json.loads(entrypoint) == ["gpucloud"]
    (cmd,) = re.findall(r"^CMD (.+)$", text, re.M)
    check_command_line(json.loads(cmd))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "gpucloud" in scripts
    for name in re.findall(r"\b(GPUCLOUD_[A-Z0-9_]+)=", text):
        assert name in settings_names(), name
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for needed in ("!pyproject.toml", "!README.md", "!src/"):
        assert needed in ignore, f"the build needs {needed[1:]}"


# ------------------------------------------------------------------------------------------- nginx


def test_nginx_streams_the_api_and_hides_metrics() -> None:
    text = re.sub(r"#[^\n]*", "", (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8"))
    server = nginx_block(text, "server")
    (body_size,) = re.findall(r"client_max_body_size\s+(\S+);", server)
    assert nginx_size(body_size) == RequestLimits().max_body_bytes

    api = nginx_block(server, "location /v1/")
    assert re.search(r"proxy_buffering\s+off;", api)
    (read_timeout,) = re.findall(r"proxy_read_timeout\s+(\d+)s;", api)
    queue = QueueSettings()
    assert int(read_timeout) > queue.max_wait_s + queue.request_timeout_s
    assert "proxy_pass http://gpucloud_gateways;" in api

    assert re.search(r"proxy_set_header\s+X-Request-ID\s+\$\w+;", server)
    assert "$http_x_request_id" in text
    metrics = nginx_block(server, "location = /metrics")
    assert re.search(r"return\s+40[34]\b", metrics) or "deny all" in metrics
    upstream = nginx_block(text, "upstream gpucloud_gateways")
    assert "gateway:8000" in upstream


# -------------------------------------------------------------------------------------- Kubernetes


def test_k8s_manifests_are_complete() -> None:
    docs = k8s_docs()
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        assert doc["metadata"]["name"], doc
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in (
        ("Namespace", "gpucloud"),
        ("Secret", "gpucloud-secrets"),
        ("ConfigMap", "gpucloud-config"),
        ("Deployment", "gpucloud-gateway"),
        ("Service", "gpucloud-gateway"),
        ("Deployment", "gpucloud-worker"),
        ("StatefulSet", "redis"),
        ("HorizontalPodAutoscaler", "gpucloud-gateway"),
        ("ServiceMonitor", "gpucloud-gateway"),
        ("ScaledObject", "gpucloud-worker"),
        ("TriggerAuthentication", "gpucloud-redis"),
    ):
        assert expected in kinds, expected

    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"], "never apply the placeholders"
    secret = k8s_kind("Secret", "gpucloud-secrets")
    assert len(secret["stringData"]["admin-key"]) < 32, "a placeholder admin key must be refused"


def test_k8s_gateway_and_worker() -> None:
    gateway = k8s_kind("Deployment", "gpucloud-gateway")
    assert gateway["spec"]["replicas"] == 2
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]

    service = k8s_kind("Service", "gpucloud-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = k8s_kind("HorizontalPodAutoscaler", "gpucloud-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gpucloud-gateway"
    assert hpa["spec"]["minReplicas"] >= 2

    monitor = k8s_kind("ServiceMonitor", "gpucloud-gateway")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {"name": "gpucloud-secrets", "key": "admin-key"}

    worker = k8s_kind("Deployment", "gpucloud-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nodeSelector" in (K8S / "worker-deployment.yaml").read_text(encoding="utf-8")

    redis = k8s_kind("StatefulSet", "redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["args"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_k8s_workers_scale_on_their_models_streams() -> None:
    """KEDA's triggers read the streams the queue really writes for the worker pods' models, in the
    consumer group the workers really read with, with the Redis password of the Secret."""
    scaled = k8s_kind("ScaledObject", "gpucloud-worker")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "gpucloud-worker")
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    worker = k8s_kind("Deployment", "gpucloud-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    _, ctx = cli_context(container["args"])
    names = RedisNames(k8s_kind("ConfigMap", "gpucloud-config")["data"]["GPUCLOUD_REDIS_PREFIX"])
    wanted = {stream for model in ctx.params["model"] for stream in names.model_jobs(model)}
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["stream"] for t in triggers} == wanted
    redis_host = k8s_kind("StatefulSet", "redis")["spec"]["serviceName"]
    for trigger in triggers:
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["consumerGroup"] == RedisNames.WORKERS_GROUP
        assert int(trigger["metadata"]["lagCount"]) == ctx.params["slots"]
        assert trigger["metadata"]["address"].startswith(f"redis-0.{redis_host}.gpucloud.svc:")
        assert trigger["authenticationRef"]["name"] == "gpucloud-redis"
    auth = k8s_kind("TriggerAuthentication", "gpucloud-redis")
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "password"
    assert ref["key"] in k8s_kind("Secret", "gpucloud-secrets")["stringData"]


def test_k8s_commands_parse_with_the_cli() -> None:
    seen = {name: check_command_line(container["args"]) for name, container in gpucloud_containers()}
    assert seen == {
        "gpucloud-migrate": "db upgrade",
        "gpucloud-gateway": "serve",
        "gpucloud-worker": "worker",
    }


def test_k8s_settings_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    known = settings_names()
    unknown = {
        k for k in k8s_kind("ConfigMap", "gpucloud-config")["data"] if k.startswith("GPUCLOUD_")
    } - known
    assert not unknown, f"not Settings fields: {sorted(unknown)}"
    secret_keys = set(k8s_kind("Secret", "gpucloud-secrets")["stringData"])
    for name, container in gpucloud_containers():
        env = k8s_env(container)
        assert not {k for k in env if k.startswith("GPUCLOUD_")} - known, name
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "gpucloud-secrets", item
                assert ref["key"] in secret_keys, item
        settings = settings_from(env, monkeypatch)
        assert settings.limits.max_body_bytes == RequestLimits().max_body_bytes
