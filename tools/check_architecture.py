#!/usr/bin/env python3
"""Checks the code's dependencies against the layer table in docs/architecture.md.

Reads every `#include "..."` in common/, server/, agent/ and cli/ and every library link line in their
CMakeLists.txt, folds them into a folder-level graph, prints that graph, and fails when an edge is
not allowed by the "Layers" table or when folders form a cycle.

Why a script and not a linker trick: the rules are about folders (what a newcomer sees), and
headers cross folders without any link line; reading the includes catches both.

Usage: tools/check_architecture.py [--root DIR]   (exit 0 = clean, 1 = violations)
Standard library only, so the test command needs nothing beyond python3.
"""
import argparse
import fnmatch
import os
import re
import sys
from collections import defaultdict

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_EXTS = (".cpp", ".hpp", ".h", ".cc")
TOP = ("common", "server", "agent", "cli")


def module_of(path):
    """Folder-level module of a repository-relative path, or None when it is not ours."""
    parts = path.split("/")
    if parts[0] == "edgeprune":  # headers under common/include/edgeprune/<x>/
        return "common"
    if parts[0] not in TOP:
        return None
    if parts[0] == "cli":  # the operator CLI is one module, its files side by side
        return "cli"
    if parts[0] == "common":
        if len(parts) > 2 and parts[1] in ("http", "torch"):
            return "common/" + parts[1]
        return "common"
    if len(parts) == 2:  # server/main.cpp, agent/main.cpp: the executables belong to app/
        return parts[0] + "/app"
    return parts[0] + "/" + parts[1]


def read_includes(root):
    edges = defaultdict(set)  # (from, to) -> example files
    modules = set()
    for top in TOP:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not name.endswith(SOURCE_EXTS):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                src = module_of(rel)
                if src is None:
                    continue
                modules.add(src)
                with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                    for inc in INCLUDE_RE.findall(f.read()):
                        dst = module_of(inc)
                        if dst and dst != src:
                            edges[(src, dst)].add(rel)
    return modules, edges


def read_links(root):
    """Library-level edges from CMake: edgeprune_library(NAME DIRS ... LINK ...) and
    target_link_libraries(edgeprune_NAME ...), mapped to the folders each library compiles."""
    lib_dirs = {}
    lib_links = defaultdict(set)
    for top in TOP:
        path = os.path.join(root, top, "CMakeLists.txt")
        if not os.path.exists(path):
            continue
        text = re.sub(r"#[^\n]*", "", open(path, encoding="utf-8").read())
        for m in re.finditer(r"edgeprune_library\(\s*(\w+)([^)]*)\)", text):
            name, body = m.group(1), m.group(2).split()
            dirs, links, mode = [], [], None
            for tok in body:
                if tok in ("DIRS", "LINK", "TORCH"):
                    mode = tok
                elif mode == "DIRS":
                    dirs.append(f"{top}/{tok}")
                elif mode == "LINK":
                    links.append(tok)
            lib_dirs[name] = [module_of(d + "/x") for d in dirs]
            lib_links[name].update(links)
        for m in re.finditer(r"add_library\(\s*edgeprune_(\w+)\s+(?:STATIC\s+|MODULE\s+)?([^)]*)\)", text):
            name, rest = m.group(1), m.group(2)
            if name in lib_dirs or "ALIAS" in rest:
                continue
            sub = re.search(r"CMAKE_CURRENT_SOURCE_DIR\}/(\w+)", rest) or re.search(r"^\s*(\w+)/", rest)
            folder = f"{top}/{sub.group(1)}/x" if sub else f"{top}/x"
            lib_dirs[name] = [module_of(folder)]
        for m in re.finditer(r"target_link_libraries\(\s*edgeprune_(\w+)([^)]*)\)", text):
            lib_links[m.group(1)].update(m.group(2).split())
    edges = defaultdict(set)
    for lib, links in lib_links.items():
        for link in links:
            if not link.startswith("edgeprune::") or link == "edgeprune::options":
                continue
            target = link.split("::", 1)[1]
            for src in lib_dirs.get(lib, []):
                for dst in lib_dirs.get(target, []):
                    if src != dst:
                        edges[(src, dst)].add(f"CMake: edgeprune_{lib} links {link}")
    return edges


def read_layers(root):
    """The table under '## Layers' in docs/architecture.md: | module | may use |."""
    text = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
    section = re.search(r"^## Layers\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not section:
        sys.exit("docs/architecture.md has no '## Layers' section")
    rules = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        mods = re.findall(r"`([^`]+)`", cells[0])
        allowed = re.findall(r"`([^`]+)`", cells[1])
        for mod in mods:
            rules[mod] = allowed
    return rules


def allowed(rules, src, dst):
    for pattern, may_use in rules.items():
        if fnmatch.fnmatch(src, pattern):
            return any(fnmatch.fnmatch(dst, p) for p in may_use)
    return None  # module not in the table


def find_cycles(nodes, edges):
    graph = defaultdict(set)
    for (a, b) in edges:
        graph[a].add(b)
    index, low, stack, on_stack, comps, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return comps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    args = parser.parse_args()
    root = os.path.abspath(args.root)

    modules, edges = read_includes(root)
    for key, why in read_links(root).items():
        edges[key].update(why)
    rules = read_layers(root)

    print("Folder-level dependencies (module -> what it uses):")
    targets = defaultdict(list)
    for (a, b) in edges:
        targets[a].append(b)
    width = max(len(m) for m in modules)
    for mod in sorted(modules):
        print(f"  {mod:<{width}} -> {', '.join(sorted(targets[mod])) or '(nothing of ours)'}")

    problems = []
    for mod in sorted(modules):
        if allowed(rules, mod, mod) is None:
            problems.append(f"{mod}: not in the Layers table of docs/architecture.md")
    for (a, b), why in sorted(edges.items()):
        if allowed(rules, a, b) is False:
            problems.append(f"{a} -> {b} is not allowed (e.g. {sorted(why)[0]})")
    for comp in find_cycles(modules, edges):
        problems.append("folder cycle: " + " <-> ".join(comp))

    if problems:
        print(f"\n{len(problems)} architecture violation(s):")
        for p in problems:
            print("  " + p)
        return 1
    print("\nArchitecture check: every dependency follows docs/architecture.md, no folder cycles.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
