"""Render deploy/kubernetes with kubectl kustomize, and run a rendered pod's container as a plain process.

``Pod`` starts the container's command, arguments and environment as the Deployment states them,
with its volumes written (Secrets) or linked (hostPath) at their mount paths under a temporary
root, in a PID and network namespace of its own (``unshare``): the exporter is PID 1 and listens
on the container's own port, as in a pod. It runs as the pod's ``runAsUser``/``runAsGroup``
(``setpriv``). The one rewrite: each mount path in an argument or variable gets the root in front.
Probes run as the kubelet runs them: exec probes inside the namespaces with the container's
environment, HTTP probes against the pod's address.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO
from tests.support.procs import IN_CI, stop, wait_for

KUBE = REPO / "deploy" / "kubernetes"
OVERLAYS = tuple(sorted(path.name for path in (KUBE / "overlays").iterdir() if path.is_dir()))
PACKS = ("method333", "botflow", "crm", "scraper")
# The Kubernetes versions docs/kubernetes.md says the manifests target.
KUBERNETES_VERSIONS = tuple(f"1.{minor}.0" for minor in range(30, 38))


def need(name: str, why: str) -> str:
    """A binary's path; skip locally when it is missing, fail under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({why})"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize folder`` renders."""
    kubectl = need("kubectl", "kubectl >= 1.27 with kustomize v5 renders deploy/kubernetes")
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, f"kubectl kustomize {folder}: {result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT (the Dockerfile's final stage), which a container without command runs."""
    final = (REPO / "Dockerfile").read_text(encoding="utf-8").split("\nFROM ")[-1]
    match = re.search(r"^ENTRYPOINT (\[.*\])$", final, flags=re.M)
    assert match, "the Dockerfile's final stage has an exec-form ENTRYPOINT"
    return list(json.loads(match[1]))


_OPENED: dict[Path, int] = {}  # folders given o+x for the session, with their own modes


def _open_the_way(path: Path) -> None:
    """Let the pod's uid reach this virtualenv and checkout: a clone under a private folder (CI's or
    mktemp's, mode 0700) gets search permission on each such ancestor until the session ends."""
    for folder in [*reversed(path.parents), REPO]:
        mode = folder.stat().st_mode & 0o7777
        if folder not in _OPENED and not mode & 0o001:
            _OPENED[folder] = mode
            folder.chmod(mode | 0o001)
            if len(_OPENED) == 1:
                atexit.register(lambda: [p.chmod(m) for p, m in _OPENED.items() if p.exists()])


def new_root() -> Path:
    """A temporary root that the pod's user can traverse (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="pod-root-"))
    root.chmod(0o755)
    return root


@dataclass
class Pod:
    """A rendered Deployment's first container, running; see the module docstring."""

    proc: subprocess.Popen
    pid: int  # the container's PID 1, as seen from here
    env: dict[str, str]
    container: dict[str, Any]
    user: list[str]
    nsenter: str = "nsenter"
    root: Path = Path("/")
    mounts: tuple[str, ...] = ()
    last_probe_output: str = ""

    def exec(self, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside the pod, as the kubelet runs an exec probe."""
        nsenter = [self.nsenter, f"--target={self.pid}", "--pid", "--net", "--mount", "--"]
        argv = [*_in_venv(command[:1]), *map(self.rewrite, command[1:])]
        return subprocess.run([*nsenter, *self.user, *argv], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def rewrite(self, value: str) -> str:
        return _moved(value, self.root, self.mounts)

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        assert name_or_number in ports, f"no container port named {name_or_number!r}"
        return int(ports[name_or_number])

    def get(self, port: int, path: str, scheme: str = "HTTP", headers: Mapping[str, str] | None = None,
            ca: Path | None = None, server_name: str | None = None) -> tuple[int, str]:
        """GET from inside the pod's network: unverified TLS like the kubelet, or verified with ``ca``."""
        script = _GET.format(args=(scheme.lower(), port, path, dict(headers or {}), str(ca) if ca else None,
                                   server_name))
        nsenter = [self.nsenter, f"--target={self.pid}", "--net", "--"]
        result = subprocess.run([*nsenter, sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=30, check=False)
        if result.returncode != 0:
            raise ConnectionError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed")
        status, _, body = result.stdout.partition("\n")
        return int(status), body

    def probe(self, which: str) -> bool:
        """True when the container's liveness or readiness probe succeeds now."""
        spec = self.container[f"{which}Probe"]
        if "exec" in spec:
            result = self.exec(spec["exec"]["command"], timeout=spec.get("timeoutSeconds", 1) + 5)
            self.last_probe_output = result.stdout + result.stderr  # shown when a wait for the probe fails
            return result.returncode == 0
        http = spec["httpGet"]
        try:
            status, _ = self.get(self.port(http["port"]), http.get("path", "/"), http.get("scheme", "HTTP"))
        except ConnectionError:
            return False
        return 200 <= status < 400


def _moved(value: str, root: Path, mounts: Sequence[str]) -> str:
    """Each mount path in ``value`` (longest first) moved under the temporary root."""
    for path in mounts:
        value = value.replace(path, f"{root}{path}")
    return value


def _in_venv(name: list[str]) -> list[str]:
    """A program of the image (python, pipeline-exporter) by this virtualenv's absolute path: on machines
    where its interpreter lies under /root, the pod's user can run it by path but not find it by name."""
    path = Path(sys.executable).parent / name[0]
    return [str(path)] if path.exists() else name


_GET = """
import http.client, socket, ssl, sys
scheme, port, path, headers, ca, server_name = {args!r}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
sock = socket.create_connection(("127.0.0.1", port), 10)
if scheme == "https":
    if ca:
        context = ssl.create_default_context(cafile=ca)
    else:  # the kubelet does not check a probe's certificate
        context = ssl._create_unverified_context()
    sock = context.wrap_socket(sock, server_hostname=server_name or "127.0.0.1")
conn.sock = sock
conn.request("GET", path, headers=headers)
answer = conn.getresponse()
print(answer.status)
sys.stdout.write(answer.read().decode("utf-8", "replace"))
"""


def _mounts(spec: dict[str, Any], container: dict[str, Any], root: Path, secrets: Mapping[str, Mapping[str, bytes]],
            host_paths: Mapping[str, Path], gid: int | None) -> list[str]:
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    paths = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = root / mount["mountPath"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        for parent in [*target.parents][: len(Path(mount["mountPath"]).parts) - 1]:
            parent.chmod(0o755)
        if "secret" in volume:
            target.mkdir()
            mode = volume["secret"].get("defaultMode", 0o644)
            for key, data in secrets[volume["secret"]["secretName"]].items():
                (target / key).write_bytes(data)
                (target / key).chmod(mode)
                if gid is not None:  # fsGroup: the files belong to the pod's group
                    os.chown(target / key, 0, gid)
            target.chmod(0o755)
        elif "hostPath" in volume:
            target.symlink_to(host_paths[volume["hostPath"]["path"]])
        else:
            raise AssertionError(f"volume {mount['name']}: only secret and hostPath volumes are run here")
        paths.append(mount["mountPath"])
    return sorted(paths, key=len, reverse=True)


def _env(container: dict[str, Any], secrets: Mapping[str, Mapping[str, bytes]]) -> dict[str, str]:
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]].decode()
    return env


@contextmanager
def running_pod(deployment: dict[str, Any], root: Path, log: Path, secrets: Mapping[str, Mapping[str, bytes]],
                host_paths: Mapping[str, Path] | None = None) -> Iterator[Pod]:
    """Start the Deployment's first container as described in the module docstring."""
    tools = {name: need(name, "util-linux and iproute2 run the pod's namespaces")
             for name in ("unshare", "nsenter", "setpriv", "ip")}
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true: running a pod's container needs root (namespaces, the pod's user)")
        pytest.skip("running a pod's container needs root (namespaces, the pod's user)")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    uid, gid = context.get("runAsUser"), context.get("runAsGroup")
    groups = [g for g in (spec.get("securityContext", {}).get("fsGroup"),) if g is not None]
    user = [tools["setpriv"], f"--reuid={uid}", f"--regid={gid}",
            f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"] if uid is not None else []
    if user:
        _open_the_way(Path(sys.executable))
    mounts = _mounts(spec, container, root, secrets, host_paths or {}, spec.get("securityContext", {}).get("fsGroup"))


    def rewrite(value: str) -> str:
        return _moved(value, root, mounts)

    # The image has python and pipeline-exporter in /usr/local/bin; here, this virtualenv's bin.
    venv = Path(sys.executable).parent
    env = {"PATH": f"{venv}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
           "HOME": str(root), **{k: rewrite(v) for k, v in _env(container, secrets).items()}}
    command = container.get("command") or entrypoint()
    argv = [*_in_venv(command[:1]), *command[1:], *map(rewrite, container.get("args", []))]
    launcher = [tools["unshare"], "--pid", "--fork", "--mount-proc", "--net", "--kill-child=SIGKILL",
                "/bin/sh", "-c", f'{tools["ip"]} link set lo up && exec "$@"', "sh", *user, *argv]
    with open(log, "wb") as out:
        proc = subprocess.Popen(launcher, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    try:
        def child() -> int | None:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            return int(kids[0]) if kids else None

        pid = wait_for(child, timeout=20, what="the pod's first process")
        yield Pod(proc=proc, pid=pid, env=env, container=container, user=user, nsenter=tools["nsenter"],
                  root=root, mounts=tuple(mounts))
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
