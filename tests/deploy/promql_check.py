#!/usr/bin/env python3
"""Evaluates every PromQL expression of the Grafana dashboard and of the alert rules through a
running Prometheus's query API (standard library only).

    promql_check.py <prometheus url> <dashboard.json>

The dashboard's expressions are evaluated with its template variables set as a user would first
see them ($job = edgeprune, $agent_job = edgeprune-agent, $device = All, $slo_ms = its default,
$__rate_interval = 1m); each must succeed and return at least one series, since the scenario of
tests/deploy/dashboard_test.sh produces every family the dashboard shows. The alert rules are the
ones Prometheus loaded itself (GET /api/v1/rules): each must be healthy after an evaluation, its
expression must evaluate, and every metric it names must have series (an alert that is quiet
because it reads a misspelt metric is the failure this catches). Exit 1 with one line per problem.
"""
import json
import re
import sys
import urllib.parse
import urllib.request

VARIABLES = {
    "job": "edgeprune",
    "agent_job": "edgeprune-agent",
    "device": ".*",
    "__rate_interval": "1m",
}


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:  # 400 with an error body for a bad expression
        body = json.load(e)
    if body.get("status") != "success":
        return None, body.get("error", "unknown error")
    return body["data"]["result"], None


def substitute(expr, variables):
    def value(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(name)
        return variables[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_targets(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def check_dashboard(base, dashboard, problems):
    variables = dict(VARIABLES)
    ids = set()
    for var in dashboard["templating"]["list"]:
        if var["type"] == "textbox":
            variables[var["name"]] = var["query"]
    for panel in dashboard["panels"]:
        if panel["id"] in ids:
            problems.append("panel id %d is used twice" % panel["id"])
        ids.add(panel["id"])
    count = 0
    for title, expr in dashboard_targets(dashboard):
        count += 1
        try:
            text = substitute(expr, variables)
        except KeyError as e:
            problems.append("panel %r uses an undefined variable $%s" % (title, e.args[0]))
            continue
        result, error = query(base, text)
        if error:
            problems.append("panel %r: %s: %s" % (title, text, error))
        elif not result:
            problems.append("panel %r returns nothing: %s" % (title, text))
        else:
            print("ok  %-32s %3d series  %s" % (title[:32], len(result), text))
    return count


METRIC = re.compile(r"\b((?:edgeprune|process)_[a-z0-9_]+|up)\b(?!\s*\()")


def check_rules(base, problems):
    with urllib.request.urlopen(base + "/api/v1/rules", timeout=30) as r:
        groups = json.load(r)["data"]["groups"]
    count = 0
    for group in groups:
        for rule in group["rules"]:
            count += 1
            name = rule.get("name", "?")
            if rule.get("health") != "ok":
                problems.append("rule %s is %s: %s" % (name, rule.get("health"), rule.get("lastError", "")))
            _, error = query(base, rule["query"])
            if error:
                problems.append("rule %s: %s" % (name, error))
                continue
            for metric in sorted(set(METRIC.findall(rule["query"]))):
                series, error = query(base, "count(%s)" % metric)
                if error or not series:
                    problems.append("rule %s reads %s, which has no series" % (name, metric))
            print("ok  rule %s" % name)
    return count


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    base, path = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(path) as f:
        dashboard = json.load(f)
    problems = []
    targets = check_dashboard(base, dashboard, problems)
    rules = check_rules(base, problems)
    if rules == 0:
        problems.append("Prometheus loaded no alert rules")
    for p in problems:
        print("FAIL: " + p)
    print("%d dashboard expressions, %d alert rules, %d problem(s)" % (targets, rules, len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
