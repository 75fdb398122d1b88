"""What there is to deploy: the Dockerfile and the kustomize base in deploy/kubernetes/.

The base is rendered as `kubectl kustomize` renders it (the few kustomize features it uses, done here
in Python so a machine without kubectl runs the test; where kubectl is installed its own rendering must
be the same) and every object is validated against the Kubernetes API schemas of a current release,
shipped inside the kubernetes-validate package (no download at test time). Then the things a deploy
relies on: the Procfile's three processes, the probes, grace periods from the shutdown bounds, a
PodDisruptionBudget, resources, non-root, the settings from a Secret and the catalog from a ConfigMap,
the metrics ports annotated for scraping. The Dockerfile installs what README's production install does
and runs the same entry points as the Procfile."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from bot.catalog import parse_catalog
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes"
# A current release, and the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


def render(base: Path = BASE) -> list[dict]:
    """`kubectl kustomize base` for the features this base uses: resources, and labels added to every
    object's metadata (not to selectors or templates). Anything else is refused rather than ignored."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "labels"}
    assert not unknown, f"render() does not know kustomize's {unknown}: teach it, or test with kubectl"
    labels: dict[str, str] = {}
    for entry in kustomization.get("labels", []):
        assert set(entry) == {"pairs"}, "only plain labels (no includeSelectors/includeTemplates)"
        labels.update(entry["pairs"])
    objects = []
    for name in kustomization["resources"]:
        for obj in yaml.safe_load_all((base / name).read_text()):
            if obj:
                obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), **labels}
                objects.append(obj)
    return objects


def by_kind(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.fixture(scope="module")
def objects():
    return by_kind(render())


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, command in (line.split(":", 1) for line in lines if line.strip())}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_renders_the_base_as_the_tests_do():
    rendered = subprocess.run(["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    assert by_kind([o for o in yaml.safe_load_all(rendered) if o]) == by_kind(render())


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_is_valid_for_the_kubernetes_api(objects, version):
    assert {kind for kind, _ in objects} == {"Deployment", "Service", "PodDisruptionBudget", "Secret", "ConfigMap"}
    for obj in objects.values():
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError


def test_the_procfiles_three_processes_run_as_deployments(objects):
    commands = {name: deployment["spec"]["template"]["spec"]["containers"][0]["command"]
                for (kind, name), deployment in objects.items() if kind == "Deployment"}
    procs = procfile()
    assert set(commands) == {f"syncbot-{name}" for name in procs}
    for name, argv in procs.items():
        # The Procfile's --port $PORT is the container's fixed port; --metrics-port is what Kubernetes scrapes.
        assert without_ports(commands[f"syncbot-{name}"]) == without_ports(argv), name


def without_ports(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if not skip and arg not in ("--port", "--metrics-port"):
            kept.append(arg)
        skip = not skip and arg in ("--port", "--metrics-port")
    return kept


def test_pods_are_probed_drained_bounded_and_not_root(objects):
    lease = Settings.model_fields["job_lease_seconds"].default
    web_bound = Settings.model_fields["drain_seconds"].default + Settings.model_fields["shutdown_seconds"].default
    for (kind, name), deployment in objects.items():
        if kind != "Deployment":
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert {"secretRef": {"name": "syncbot-env"}} in container["envFrom"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "catalog")
        assert env["SYNCBOT_CATALOG"] == f"{mount}/syncbot.toml"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        port = int(annotations["prometheus.io/port"])
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        assert port in {p["containerPort"] for p in container["ports"]}
        grace = pod["terminationGracePeriodSeconds"]
        if name == "syncbot-web":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert grace > web_bound  # drain, then the acknowledged work's bound, before the SIGKILL
            assert int(env["SYNCBOT_DRAIN_SECONDS"]) + int(env["SYNCBOT_SHUTDOWN_SECONDS"]) < grace
        else:
            assert "--metrics-port" in container["command"]
            assert grace > lease * 2 / 3 + 10  # a TRUNCATE's statement bound, and a call's retries


def test_a_disruption_budget_keeps_the_web_up_and_the_service_selects_it(objects):
    web = objects[("Deployment", "syncbot-web")]["spec"]["template"]["metadata"]["labels"]
    budget = objects[("PodDisruptionBudget", "syncbot-web")]["spec"]
    assert budget["minAvailable"] >= 1 and budget["selector"]["matchLabels"].items() <= web.items()
    service = objects[("Service", "syncbot-web")]["spec"]
    assert service["selector"].items() <= web.items()
    assert objects[("Deployment", "syncbot-web")]["spec"]["replicas"] > budget["minAvailable"]


def test_the_secret_holds_settings_and_the_configmap_a_catalog(objects):
    known = {(f.validation_alias or name).upper() for name, f in Settings.model_fields.items()}
    secret = objects[("Secret", "syncbot-env")]["stringData"]
    assert set(secret) - {"AWS_REGION"} <= known, set(secret) - known
    catalog = parse_catalog(objects[("ConfigMap", "syncbot-catalog")]["data"]["syncbot.toml"])
    assert catalog.tables


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def readme_block(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- {marker} -->\n```sh\n(.*?)\n```", readme, re.S).group(1).strip()


def test_the_dockerfile_installs_what_the_readme_does_and_runs_the_procfiles_entry_point():
    steps = dockerfile()
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2 and all(b.startswith("python:") and b.endswith("-slim") for b in bases)
    install = readme_block("production-install")  # what README's production install runs
    assert install == "pip install ." and "[" not in install
    pip_runs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert len(pip_runs) == 1 and pip_runs[0].rstrip().endswith(install.replace("pip", "/opt/syncbot/bin/pip"))
    user = next(args for op, args in reversed(steps) if op == "USER")
    assert user.split(":")[0] not in ("0", "root")
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "/healthz" in health
    cmd = [eval_json(args) for op, args in steps if op == "CMD"][-1]  # exec form
    web = procfile()["web"]
    assert cmd == web[:2] == ["syncbot", "serve"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {args.split()[0].strip("./") for op, args in steps if op == "COPY" and "--from" not in args}
    assert packages <= copied, packages - copied  # the build stage has every package `pip install .` installs
    scripts = project["project"]["scripts"]
    assert set(argv[0] for argv in procfile().values()) == {"syncbot"} <= set(scripts)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".venv", ".git"} <= set(ignored)  # no test code or local venv in the image


def eval_json(text: str) -> list[str]:
    import json

    return json.loads(text)
