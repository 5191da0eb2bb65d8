"""docker-compose.yml, the Dockerfile and docker/ stay in step with the harness, without an engine:
every expected service, loopback-only ports, configs that match each other, the Makefile's install."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from harness.gateway.config import GatewayConfig
from harness.gateway.launch import GROUP, gateway_config
from harness.stack.docker import IMAGE, TOXIPROXY_IMAGE
from harness.stack.toxiproxy import PINNED_VERSION

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
STACK = json.loads((ROOT / "docker" / "stack.json").read_text(encoding="utf-8"))
PROXIES = json.loads((ROOT / "docker" / "toxiproxy.json").read_text(encoding="utf-8"))
LOAD_SERVICES = {"locust-master", "locust-worker"}


def _default(value: Any) -> str:
    """`${VAR:-default}` as compose resolves it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return [_default(part) for part in (shlex.split(command) if isinstance(command, str) else command)]


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _published(service: str) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port), from short or long port syntax."""
    result = {}
    for entry in SERVICES[service].get("ports", []):
        if isinstance(entry, dict):
            host_ip, host, inside = entry.get("host_ip", ""), entry.get("published"), entry["target"]
        else:
            parts = str(entry).split(":")
            host_ip, host, inside = (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", *parts[-2:])
        result[int(str(inside).split("/")[0])] = (host_ip, int(host))
    return result


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path (relative to the project) of each bind mount."""
    mounts = {}
    for entry in SERVICES[service].get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts


def _port(url: str) -> int:
    port = urlparse(url).port
    assert port is not None, url
    return port


def test_every_service_the_harness_expects_is_there():
    assert {"toxiproxy", "endpoints", "gateway", "locust-master", "locust-worker"} <= set(SERVICES)


def test_toxiproxy_is_shopifys_image_pinned_to_the_harness_version():
    assert SERVICES["toxiproxy"]["image"] == f"ghcr.io/shopify/toxiproxy:{PINNED_VERSION.removeprefix('v')}"
    assert SERVICES["toxiproxy"]["image"] == TOXIPROXY_IMAGE


def test_project_services_are_built_from_the_dockerfile_under_the_backends_image_name():
    for name in ("endpoints", "gateway", *LOAD_SERVICES):
        assert SERVICES[name]["build"] == ".", name
        assert SERVICES[name]["image"] == IMAGE, name


def test_every_published_port_is_on_loopback_only():
    published = 0
    for name, service in SERVICES.items():
        assert service.get("network_mode") != "host", name
        for inside, (host_ip, _) in _published(name).items():
            assert host_ip == "127.0.0.1", f"{name}: port {inside} published on {host_ip or 'every address'}"
            published += 1
    assert published >= 8


def test_plain_up_starts_the_stack_and_locust_only_with_the_load_profile():
    for name, service in SERVICES.items():
        assert service.get("profiles") == (["load"] if name in LOAD_SERVICES else None), name


def test_stack_json_describes_the_published_ports_as_seen_from_the_host():
    models = STACK["models"]
    count = int(_option(_command("endpoints"), "--models"))
    assert models == [f"model-{i}" for i in range(count)]
    endpoints, toxiproxy = _published("endpoints"), _published("toxiproxy")
    listen = {p["name"]: int(p["listen"].rsplit(":", 1)[1]) for p in PROXIES}
    port_base = int(_option(_command("endpoints"), "--port-base"))
    for i, model in enumerate(models):
        assert endpoints[port_base + i] == ("127.0.0.1", _port(STACK["endpoint_urls"][model]))
        assert toxiproxy[listen[model]] == ("127.0.0.1", _port(STACK["proxy_urls"][model]))
    assert toxiproxy[8474] == ("127.0.0.1", _port(STACK["toxiproxy_url"]))
    urls = [*STACK["endpoint_urls"].values(), *STACK["proxy_urls"].values(), STACK["toxiproxy_url"]]
    assert {urlparse(url).hostname for url in urls} == {"127.0.0.1"}


def test_toxiproxy_config_routes_each_model_to_its_endpoint_and_is_mounted():
    port_base = int(_option(_command("endpoints"), "--port-base"))
    assert [p["name"] for p in PROXIES] == STACK["models"]
    for i, proxy in enumerate(PROXIES):
        assert proxy["listen"].startswith("0.0.0.0:") and proxy["enabled"] is True
        assert proxy["upstream"] == f"endpoints:{port_base + i}"
    (config,) = [arg.split("=", 1)[1] for arg in _command("toxiproxy") if arg.startswith("-config=")]
    assert _mounts("toxiproxy")[config].removesuffix(":ro") == "./docker/toxiproxy.json"


def test_gateway_config_is_the_harness_config_through_the_proxies_and_is_mounted():
    path = ROOT / "docker" / "gateway.yaml"
    config = GatewayConfig.load(path)
    assert (config.mode, config.host) == ("resilient", "0.0.0.0")
    assert _published("gateway")[config.port][0] == "127.0.0.1"
    via_proxies = {p["name"]: f"http://toxiproxy:{p['listen'].rsplit(':', 1)[1]}" for p in PROXIES}
    expected = gateway_config(SimpleNamespace(models=STACK["models"], proxy_urls=via_proxies), "resilient")  # type: ignore[arg-type]
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert loaded["providers"] == expected["providers"]
    assert loaded["groups"] == expected["groups"] and GROUP in loaded["groups"]
    assert _mounts("gateway")[_option(_command("gateway"), "--config")] == "./docker/gateway.yaml"


def test_endpoints_command_parses_with_the_endpoints_own_parser(monkeypatch):
    import harness.endpoints.__main__ as entry

    seen = {}

    async def fake_serve(models, latency, seed, host, ready_file, port_base=0):
        seen.update(models=models, host=host, port_base=port_base)

    monkeypatch.setattr(entry, "serve", fake_serve)
    argv = _command("endpoints")
    assert argv[:3] == ["python", "-m", "harness.endpoints"]
    assert entry.main(argv[3:]) == 0
    assert seen == {"models": STACK["models"], "host": "0.0.0.0", "port_base": 18000}


def _parsed_load_args(argv: list[str]) -> dict[str, Any]:
    """harness.load's own parser, in a subprocess: importing locust here would patch this process."""
    script = (
        "import json, sys, harness.load.__main__ as load\n"
        "load.run = lambda args: print(json.dumps(vars(args), default=str)) or 0\n"
        "sys.exit(load.main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_locust_master_and_worker_commands_parse_and_meet_each_other():
    master_argv, worker_argv = _command("locust-master"), _command("locust-worker")
    assert master_argv[:3] == worker_argv[:3] == ["python", "-m", "harness.load"]
    master, worker = _parsed_load_args(master_argv[3:]), _parsed_load_args(worker_argv[3:])
    assert (master["role"], worker["role"]) == ("master", "worker")
    assert master["master_host"] == "0.0.0.0" and worker["master_host"] == "locust-master"
    assert master["master_port"] == worker["master_port"]
    assert master["workers"] == SERVICES["locust-worker"].get("deploy", {}).get("replicas", 1)
    gateway_port = GatewayConfig.load(ROOT / "docker" / "gateway.yaml").port
    assert master["host"] == worker["host"] == f"http://gateway:{gateway_port}"
    shared = {target for target, source in _mounts("locust-master").items() if not source.startswith(".")}
    assert shared == {t for t, s in _mounts("locust-worker").items() if not s.startswith(".")}
    assert str(Path(master["records"]).parent) in shared
    assert Path(worker["records"]).parent == Path(master["records"]).parent


def _pip_installs(lines: list[str]) -> list[list[str]]:
    """The arguments after `pip install` of every command that runs one, in order."""
    installs = []
    for line in lines:
        if "pip install" not in line:
            continue
        for command in line.split("&&"):
            words = shlex.split(command.strip().lstrip("@"))
            if "pip" in words and "install" in words:
                assert words[words.index("pip") - 1] == "-m", f"not `python -m pip`: {command}"
                installs.append(words[words.index("install") + 1 :])
    return installs


def test_dockerfile_installs_with_the_makefiles_own_commands():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    recipes = [line for line in makefile if line.startswith("\t")]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    runs = [line.split(None, 1)[1] for line in dockerfile if line.startswith("RUN ")]
    assert _pip_installs(runs) == _pip_installs(recipes)
    assert _pip_installs(recipes)[-1][-2:] == ["-e", ".[dev]"]


def test_dockerfile_is_python_311_slim_and_shows_help_by_default():
    instructions = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert "FROM python:3.11-slim" in instructions
    assert 'CMD ["chaos-harness", "--help"]' in instructions


def test_build_context_leaves_out_the_virtualenv_and_run_folders():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".git", "runs", ".bin"} <= ignored


def _compose_cli() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        check = subprocess.run([*command, "version"], capture_output=True, timeout=30)
        if check.returncode == 0:
            return command
    return None


def test_docker_compose_accepts_the_file():
    command = _compose_cli()
    if command is None:
        pytest.skip(
            "no docker CLI with the compose plugin (`docker compose version` failed); YAML checks only"
        )
    result = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
