#!/usr/bin/env python3
"""Checks deploy/k8s/ against the server it ships with (CTest k8s.manifests).

No cluster runs here, so this proves what can be proved without one:
  - every file parses as YAML, kustomization.yaml lists exactly the manifests in the folder, and
    every object has apiVersion, kind and metadata.name;
  - each Deployment's selector matches its pod labels; the Service and the PodDisruptionBudget
    select the API pods; the Service's target port is a port the container names;
  - each container runs a command of `edgeprune-server --help`, with flags its `<command> --help`
    lists, and --config names a file a volume mounts;
  - every EDGEPRUNE_<SECTION>_<KEY> variable is a configuration key; the ConfigMap's server.toml,
    with the containers' variables, passes `edgeprune-server config --check`;
  - every path the configuration names lies under a volume mount or is installed by a Debian
    package (ours: the migrations; Debian's: the Fashion-MNIST files);
  - probes ask for routes the server serves (`edgeprune-server routes`), on a named port;
  - every ConfigMap and PersistentVolumeClaim a pod refers to is defined here; Secrets are
    created by the operator (kustomization.yaml says how), so their names must appear there.

  check_manifests.py <deploy/k8s dir> <edgeprune-server binary>
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Paths the configuration may name outside any volume: installed by packages into the image.
PACKAGED_PATHS = ("/usr/share/edgeprune/migrations", "/usr/share/datasets/fashion-mnist")
PATH_KEYS = ("server.data_dir", "server.tls_cert", "server.tls_key", "server.client_ca",
             "fleet.device_ca_cert", "fleet.device_ca_key", "store.migrations_dir",
             "variants.dataset_dir")

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def run(binary, *args, env=None, stdout_only=False):
    out = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=60)
    return out.returncode, out.stdout if stdout_only else out.stdout + out.stderr


def server_facts(binary):
    _, text = run(binary, "--help")
    commands = set(re.findall(r"^  ([a-z][a-z-]+)\s", text, re.M))
    _, text = run(binary, "config", stdout_only=True)  # the schema as a markdown table
    keys = set(re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \|", text, re.M))
    code, text = run(binary, "routes", stdout_only=True)
    if code != 0:
        raise SystemExit(f"`{binary} routes` failed: {text}")
    routes = {r["path"] for r in json.loads(text) if r["method"] == "GET"}
    return commands, keys, routes


def load(folder):
    docs = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(folder, name)) as f:
            try:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                problem(name, f"not YAML: {e}")
    return docs


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_probes(where, c, ports, routes):
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = c.get(kind)
        if not probe:
            continue
        get = probe.get("httpGet", {})
        if get.get("path") not in routes:
            problem(where, f"{kind} asks for {get.get('path')}, which the server does not serve")
        if get.get("port") not in ports:
            problem(where, f"{kind} uses port {get.get('port')}, not a named container port")


def check_container(where, c, pod, facts, binary, toml_text, objects, kustomization_text):
    commands, keys, routes = facts
    ports = {p["name"] for p in c.get("ports", [])}
    check_probes(where, c, ports, routes)
    cmd = c.get("command", []) + c.get("args", [])
    if len(cmd) < 2 or cmd[0] != "/usr/bin/edgeprune-server":
        problem(where, f"runs {cmd[:1]}, not /usr/bin/edgeprune-server <command>")
        return ports
    sub = cmd[1]
    if sub not in commands:
        problem(where, f"'{sub}' is not an edgeprune-server command ({sorted(commands)})")
        return ports
    _, help_text = run(binary, sub, "--help")
    for flag in (a for a in cmd[2:] if a.startswith("--")):
        if not re.search(rf"(^|[ ,]){re.escape(flag)}\b", help_text, re.M):
            problem(where, f"`edgeprune-server {sub}` has no flag {flag}")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in mounts.values():
        v = volumes.get(m["name"])
        if v is None:
            problem(where, f"mounts volume '{m['name']}' the pod does not define")
            continue
        if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in objects:
            problem(where, f"ConfigMap '{v['configMap']['name']}' is not defined here")
        if "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"]["claimName"]
            if ("PersistentVolumeClaim", claim) not in objects:
                problem(where, f"PersistentVolumeClaim '{claim}' is not defined here")
        if "secret" in v and v["secret"]["secretName"] not in kustomization_text:
            problem(where, f"Secret '{v['secret']['secretName']}' is not explained in "
                           "kustomization.yaml")
    if "--config" in cmd:
        config_path = cmd[cmd.index("--config") + 1]
        if config_path not in mounts or "subPath" not in mounts[config_path]:
            problem(where, f"--config {config_path} is not a file a volume mounts")

    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPRUNE_")}
    for e in c.get("env", []):
        name = e["name"]
        m = re.fullmatch(r"EDGEPRUNE_([A-Z]+)_([A-Z_0-9]+)", name)
        if not m or f"{m[1].lower()}.{m[2].lower()}" not in keys:
            problem(where, f"environment variable {name} is not a configuration key")
            continue
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] not in kustomization_text:
            problem(where, f"Secret '{ref['name']}' is not explained in kustomization.yaml")
        # A value from a Secret is only known in the cluster; a well-formed stand-in is checked.
        env[name] = e.get("value", "postgresql://edgeprune@db.invalid:5432/edgeprune")
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(toml_text)
        f.flush()
        code, text = run(binary, "config", "--check", "--config", f.name, env=env)
    if code != 0:
        problem(where, f"the configuration does not pass `config --check`: {text.strip()}")
        return ports
    values = dict(re.findall(r"^([a-z_]+\.[a-z_0-9]+) = (.*?)  \(", text, re.M))
    for key in PATH_KEYS:
        path = values.get(key, "")
        if not path.startswith("/"):
            problem(where, f"{key} = '{path}' is not an absolute path")
        elif not (any(path == p or path.startswith(p.rstrip("/") + "/") for p in mounts)
                  or path.startswith(PACKAGED_PATHS)):
            problem(where, f"{key} = {path} is neither under a volume mount nor packaged")
    return ports


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    folder, binary = sys.argv[1], sys.argv[2]
    facts = server_facts(binary)
    docs = load(folder)
    kustomization = docs.pop("kustomization.yaml", [{}])[0]
    listed = set(kustomization.get("resources", []))
    if listed != set(docs):
        problem("kustomization.yaml", f"lists {sorted(listed)}, the folder has {sorted(docs)}")
    with open(os.path.join(folder, "kustomization.yaml")) as f:
        kustomization_text = f.read()
    objects = {}
    for name, items in docs.items():
        for d in items:
            if not all(k in d for k in ("apiVersion", "kind", "metadata")) or \
                    "name" not in d["metadata"]:
                problem(name, "an object lacks apiVersion, kind or metadata.name")
                continue
            objects[(d["kind"], d["metadata"]["name"])] = d
    configs = [o for k, o in objects.items() if k[0] == "ConfigMap"]
    toml_text = configs[0]["data"].get("server.toml", "") if configs else ""
    if not toml_text:
        problem("configmap", "no ConfigMap holds server.toml")

    api_labels, api_ports = None, set()
    for (kind, name), d in list(objects.items()):
        if kind != "Deployment":
            continue
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if not selects(d["spec"]["selector"].get("matchLabels"), labels):
            problem(f"Deployment {name}", "its selector does not match its pod labels")
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            ports = check_container(f"Deployment {name}/{c['name']}", c, pod, facts, binary,
                                    toml_text, objects, kustomization_text)
            if "serve" in c.get("args", []):
                api_labels, api_ports = labels, ports or set()
    if api_labels is None:
        problem("deploy/k8s", "no Deployment runs `edgeprune-server serve`")
    else:
        for (kind, name), d in objects.items():
            if kind == "Service":
                if not selects(d["spec"].get("selector"), api_labels):
                    problem(f"Service {name}", "does not select the API pods")
                for p in d["spec"].get("ports", []):
                    if p.get("targetPort") not in api_ports:
                        problem(f"Service {name}", f"targets port {p.get('targetPort')}, "
                                                   "not one the API container names")
            if kind == "PodDisruptionBudget" and not selects(
                    d["spec"]["selector"].get("matchLabels"), api_labels):
                problem(f"PodDisruptionBudget {name}", "does not select the API pods")
    for p in problems:
        print("PROBLEM:", p)
    kinds = sorted({k[0] for k in objects})
    print(f"{len(objects)} objects ({', '.join(kinds)}), "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
