"""The deployment files say what the code does: Dockerfile, compose.yaml, deploy/kubernetes/.

No container engine runs here, so each file is read (PyYAML) and held against the code:
every command line is parsed by the real ``leadflow`` command, every variable is a
setting, every health path a route, every config the service would accept.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from leadflow.app import create_app
from leadflow.cli import app as cli_app
from leadflow.config import load_config_text
from leadflow.config.schema import Pipeline
from leadflow.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
HEALTH_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)")
ALIVE_FILE = re.compile(r"getmtime\('([^']+)'\)")


# --- what the code offers -----------------------------------------------------------------


@cache
def get_routes() -> frozenset[str]:
    """The paths the app answers GET on, as its OpenAPI document lists them."""
    app = create_app(Settings(admin_token="t"), database_url="postgresql://unused/")
    return frozenset(path for path, item in app.openapi()["paths"].items() if "get" in item)


def parsed(args: list[str]) -> dict[str, Any]:
    """``leadflow ARGS`` parsed by the real command (nothing runs): its parameters."""
    group = get_command(cli_app)
    name, *rest = args
    assert name in group.commands, f"leadflow has no command {name!r}: {args}"  # type: ignore[attr-defined]
    try:
        context = group.commands[name].make_context(f"leadflow {name}", list(rest))  # type: ignore[attr-defined]
    except Exception as exc:  # the command's own usage error, say "No such option"
        pytest.fail(f"leadflow {shlex.join(args)}: {exc}")
    params: dict[str, Any] = context.params
    return params


def settings_from(env: dict[str, str]) -> Settings:
    """The settings these LEADFLOW_* variables give; fails on a name settings.py lacks."""
    fields = {}
    for name, value in env.items():
        field = name.removeprefix("LEADFLOW_").lower()
        assert name.startswith("LEADFLOW_"), name
        assert field in Settings.model_fields, f"{name} is not a setting of settings.py"
        fields[field] = value
    return Settings.model_validate(fields)


def interpolated(value: str) -> str:
    """A compose value with ``${VAR:-default}`` as its default and ``${VAR:?why}`` set."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{\w+:\?[^}]*\}", "set-by-the-operator", value)


def health_paths(command: list[str] | str) -> list[tuple[int, str]]:
    text = command if isinstance(command, str) else " ".join(command)
    return [(int(port), path) for port, path in HEALTH_URL.findall(text)]


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments): first those before any
    FROM (global ARGs), then one list per stage."""
    text = (ROOT / "Dockerfile").read_text()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == name]


def exec_form(arguments: str) -> list[str]:
    value = yaml.safe_load(arguments)  # a JSON array is YAML too
    assert isinstance(value, list), f"not in exec form: {arguments}"
    return [str(item) for item in value]


def test_the_image_is_built_in_two_stages_and_runs_as_a_user_without_rights() -> None:
    before, *builders, runtime = dockerfile_stages()
    assert builders, "a builder stage makes the wheel"
    assert instructions(before, "ARG") == ["PYTHON_IMAGE=python:3.11-slim"]
    assert instructions(runtime, "FROM") == ["${PYTHON_IMAGE} AS runtime"]
    user = instructions(runtime, "USER")[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == str(_kubernetes_user())  # runAsUser in deploy/kubernetes is the same user
    for stage in (*builders, runtime):
        for run in instructions(stage, "RUN"):
            assert not re.search(r"pip (?:install|wheel)[^&]*\[", run), f"extras installed: {run}"
    wheel = " ".join(instructions(builders[0], "RUN"))
    assert "pip wheel" in wheel  # the build backend of pyproject.toml makes the wheel
    assert "--no-index" in " ".join(instructions(runtime, "RUN"))  # only the builder's wheels


def test_the_image_runs_leadflow_serve_and_checks_a_real_health_route() -> None:
    runtime = dockerfile_stages()[-1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(instructions(runtime, "ENTRYPOINT")[-1]) == ["leadflow"]
    assert "leadflow" in scripts
    params = parsed(exec_form(instructions(runtime, "CMD")[-1]))
    assert params["worker"] is False
    assert params["host"] == "0.0.0.0"
    assert instructions(runtime, "EXPOSE") == [str(params["port"])]
    [(port, path)] = health_paths(instructions(runtime, "HEALTHCHECK")[-1])
    assert (port, path) == (params["port"], "/healthz")
    assert path in get_routes()
    env = " ".join(instructions(runtime, "ENV"))
    assert "LEADFLOW_EMBEDDED_DATABASE=false" in env  # the image expects LEADFLOW_DATABASE_URL


def test_the_build_context_has_what_the_builder_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    builder = dockerfile_stages()[1]
    copied = {part for copy in instructions(builder, "COPY") for part in copy.split()[:-1]}
    assert copied <= kept, copied - kept
    assert all((ROOT / path).exists() for path in copied)


# --- compose.yaml ----------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def leadflow_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith("leadflow:")
    }


def test_compose_runs_the_topology() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"].startswith("redis:")
    assert set(leadflow_services()) == {"migrate", "api", "worker"}
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert parsed(services["api"]["command"])["worker"] is False
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"


def test_every_compose_command_and_variable_is_leadflow_s_own() -> None:
    for name, service in leadflow_services().items():
        parsed(service["command"])
        env = {key: interpolated(str(value)) for key, value in service["environment"].items()}
        settings = settings_from(env)
        assert str(settings.database_url).endswith("@postgres:5432/leadflow"), name
        assert settings.redis_url == "redis://redis:6379/0", name
        assert settings.admin_token is not None, "each replica would make a token of its own"


def test_compose_waits_for_health_and_for_the_migration() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = condition["condition"]
            if dependency == "migrate":
                assert wanted == "service_completed_successfully", name
            else:
                assert wanted == "service_healthy", (name, dependency)
                assert not services[dependency]["healthcheck"].get("disable"), dependency
    assert {"migrate", "postgres", "redis"} <= set(services["api"]["depends_on"])
    assert {"migrate", "postgres"} <= set(services["worker"]["depends_on"])


def test_compose_health_checks_ask_real_routes_and_the_worker_s_alive_file() -> None:
    services = compose()["services"]
    api = services["api"]
    port = parsed(api["command"])["port"]
    assert health_paths(api["healthcheck"]["test"]) == [(port, "/readyz")]
    assert "/readyz" in get_routes()
    worker = services["worker"]
    alive = str(parsed(worker["command"])["alive_file"])
    assert ALIVE_FILE.findall(" ".join(worker["healthcheck"]["test"])) == [alive]
    heartbeat = Pipeline().heartbeat.total_seconds()
    assert f"> {int(heartbeat * 6)}" in " ".join(worker["healthcheck"]["test"])


def test_the_proxy_sends_to_the_api_replicas() -> None:
    proxy = compose()["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    [volume] = proxy["volumes"]
    source, target, _ = volume.split(":")
    assert target == "/etc/caddy/Caddyfile"
    caddyfile = (ROOT / source).read_text()
    port = parsed(compose()["services"]["api"]["command"])["port"]
    assert re.search(rf"dynamic a api {port}\b", caddyfile)
    [published] = proxy["ports"]
    assert re.search(rf"^:{published.split(':')[1]} \{{", caddyfile, re.M)


# --- deploy/kubernetes -----------------------------------------------------------------------


@cache
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the kustomization, by (kind, name)."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((KUBERNETES / resource).read_text()):
            objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def pod(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests()[(kind, name)]["spec"]["template"]["spec"]
    return spec


def container(kind: str, name: str) -> dict[str, Any]:
    [only] = pod(kind, name)["containers"]
    assert only["image"] == "leadflow"  # kustomization.yaml's images: sets the tag
    return dict(only)


def pod_settings(kind: str, name: str) -> Settings:
    env: dict[str, str] = {}
    for source in container(kind, name)["envFrom"]:
        if "configMapRef" in source:
            env |= manifests()[("ConfigMap", source["configMapRef"]["name"])]["data"]
        else:
            env |= manifests()[("Secret", source["secretRef"]["name"])]["stringData"]
    return settings_from(env)


def _kubernetes_user() -> int:
    users = {
        pod(kind, name)["securityContext"]["runAsUser"]
        for kind, name in manifests()
        if kind in {"Deployment", "Job"}
    }
    assert len(users) == 1
    return int(users.pop())


def test_every_manifest_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    on_disk = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert {kind for kind, _ in manifests()} == {
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
    }


def test_the_api_deployment_probes_real_routes() -> None:
    assert manifests()[("Deployment", "leadflow-api")]["spec"]["replicas"] == 2
    api = container("Deployment", "leadflow-api")
    params = parsed(api["args"])
    assert params["worker"] is False
    assert api["ports"] == [{"name": "http", "containerPort": params["port"]}]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"/readyz", "/healthz"} <= get_routes()
    service = manifests()[("Service", "leadflow-api")]["spec"]
    labels = manifests()[("Deployment", "leadflow-api")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"


def test_the_worker_deployment_lives_by_its_alive_file() -> None:
    assert manifests()[("Deployment", "leadflow-worker")]["spec"]["replicas"] == 2
    worker = container("Deployment", "leadflow-worker")
    alive = str(parsed(worker["args"])["alive_file"])
    probe = " ".join(worker["livenessProbe"]["exec"]["command"])
    assert ALIVE_FILE.findall(probe) == [alive]
    mounts = {mount["mountPath"] for mount in worker["volumeMounts"]}
    assert str(Path(alive).parent) in mounts  # writable beside a read-only root
    grace = pod("Deployment", "leadflow-worker")["terminationGracePeriodSeconds"]
    assert grace > Pipeline().stop_grace.total_seconds()  # running jobs may finish


def test_every_pod_gets_real_settings_and_a_valid_config() -> None:
    for kind, name in [
        ("Job", "leadflow-migrate"),
        ("Deployment", "leadflow-api"),
        ("Deployment", "leadflow-worker"),
    ]:
        parsed(container(kind, name)["args"])
        settings = pod_settings(kind, name)
        assert None not in (settings.database_url, settings.redis_url, settings.admin_token), name
        assert settings.config is not None
        [mount] = [
            m
            for m in container(kind, name)["volumeMounts"]
            if settings.config.is_relative_to(m["mountPath"])
        ]
        volume = {v["name"]: v for v in pod(kind, name)["volumes"]}[mount["name"]]
        config_map = manifests()[("ConfigMap", volume["configMap"]["name"])]["data"]
        key = settings.config.relative_to(mount["mountPath"]).as_posix()
        load_config_text(config_map[key], key)  # raises ConfigError, naming line and field
    assert parsed(container("Job", "leadflow-migrate")["args"]) == {"check": False}


def test_the_upgrade_steps_select_the_migration_job_alone() -> None:
    steps = (KUBERNETES / "migrate-job.yaml").read_text()
    [(key, value)] = re.findall(r"kubectl apply -k deploy/kubernetes -l ([\w./-]+)=(\w+)", steps)
    selected = [
        (kind, name)
        for (kind, name), manifest in manifests().items()
        if manifest["metadata"].get("labels", {}).get(key) == value
    ]
    assert selected == [("Job", "leadflow-migrate")]


def test_every_pod_runs_without_rights_on_a_read_only_root() -> None:
    for kind, name in manifests():
        if kind in {"Deployment", "Job"}:
            security = container(kind, name)["securityContext"]
            assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
            assert pod(kind, name)["securityContext"]["runAsNonRoot"] is True
