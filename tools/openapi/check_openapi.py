#!/usr/bin/env python3
"""Keeps the API contract, server/api/openapi.json, true. Three checks, each a CTest (tests/CMakeLists.txt):

  check_openapi.py document  DOC                    the document is OpenAPI 3.1 and its schemas JSON Schema 2020-12
  check_openapi.py routes    DOC SERVER_BIN [ARGS…] the document's operations are exactly the server's route table
  check_openapi.py responses DOC CAPTURE            every response captured by the end-to-end test fits the document

`routes` runs `SERVER_BIN routes ARGS…`, which prints the table `serve` assembles (method, path, auth),
and compares method, path and `x-edgeprune-auth` both ways. `responses` reads the JSON lines the e2e
harness writes when EDGEPRUNE_API_CAPTURE names a file ({method, target, status, content_type, body}):
a response whose path, method or status the document does not list fails, and a JSON body must
validate against the schema of its status. Needs python3-jsonschema (deploy/bootstrap.sh installs it).
"""

import json
import os
import subprocess
import sys
import urllib.parse

try:
    import jsonschema
except ImportError:
    sys.exit("check_openapi: python3-jsonschema is missing (deploy/bootstrap.sh installs it)")

HERE = os.path.dirname(os.path.abspath(__file__))
# The OpenAPI Initiative's schema of 3.1 documents (tools/openapi/README.md says where it is from).
OAS_SCHEMA = os.path.join(HERE, "oas-3.1-schema.json")
AUTHS = {"public": [], "viewer": [{"bearerToken": []}], "operator": [{"bearerToken": []}],
         "admin": [{"bearerToken": []}], "device": [{"deviceCertificate": []}]}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
Validator = jsonschema.Draft202012Validator


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def operations(doc):
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def validator_for(doc, schema):
    # The schema as the root of a document that also holds the components, so that
    # "#/components/schemas/…" references resolve with every jsonschema version Debian ships.
    root = dict(schema) if isinstance(schema, dict) else {"allOf": [schema]}
    root["components"] = doc.get("components", {})
    return Validator(root)


def resolve(doc, ref):
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def schemas_in(node, where):
    """Every Schema Object of the document with where it is, and every $ref met on the way."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = where + "/" + key
            if key == "schema" or (where.endswith("/components/schemas")):
                yield here, value
            elif key == "schemas" and where.endswith("/components"):
                yield from schemas_in(value, here)
                continue
            if key == "$ref" and isinstance(value, str):
                yield here, {"$ref": value}
            if key != "schema" and not where.endswith("/components/schemas"):
                yield from schemas_in(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from schemas_in(value, "%s/%d" % (where, i))


def fit(doc, schema, value):
    """The messages of value's misfits to schema; a schema that cannot be applied is one too."""
    try:
        return [("at /%s: " % "/".join(map(str, e.absolute_path))) + e.message[:300]
                for e in validator_for(doc, schema).iter_errors(value)]
    except Exception as e:  # an unresolvable $ref or a broken schema: jsonschema raises
        return ["the schema cannot be applied: %s" % str(e).splitlines()[0][:300]]


def check_document(doc):
    problems = []
    for error in Validator(load(OAS_SCHEMA)).iter_errors(doc):
        problems.append("not OpenAPI 3.1 at /%s: %s" % ("/".join(map(str, error.absolute_path)), error.message[:300]))
    for where, schema in schemas_in(doc, "#"):
        try:
            Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            problems.append("%s is not JSON Schema 2020-12: %s" % (where, e.message[:300]))
        text = json.dumps(schema)
        for piece in text.split('"$ref": "')[1:]:
            ref = piece.split('"', 1)[0]
            if not ref.startswith("#/") or resolve(doc, ref) is None:
                problems.append("%s: $ref %s does not resolve inside the document" % (where, ref))
    seen_ids = {}
    for path, method, op in operations(doc):
        name = "%s %s" % (method.upper(), path)
        auth = op.get("x-edgeprune-auth")
        if auth not in AUTHS:
            problems.append("%s: x-edgeprune-auth is %r, not one of %s" % (name, auth, ", ".join(AUTHS)))
        elif op.get("security") != AUTHS[auth]:
            problems.append("%s: security %s does not say %s" % (name, json.dumps(op.get("security")), auth))
        if op.get("operationId") in seen_ids:
            problems.append("%s: operationId %s repeats %s's" % (name, op["operationId"], seen_ids[op["operationId"]]))
        seen_ids[op.get("operationId")] = name
        declared = {p.get("name") for p in op.get("parameters", []) + doc["paths"][path].get("parameters", [])
                    if p.get("in") == "path"}
        template = {s[1:-1] for s in path.split("/") if s.startswith("{")}
        if declared != template:
            problems.append("%s: path parameters %s, the template has %s" % (name, sorted(declared), sorted(template)))
        for status, response in op.get("responses", {}).items():
            content = response.get("content", {})
            if status.startswith(("4", "5")) and "application/json" not in content:
                problems.append("%s %s: an error answers the JSON error body" % (name, status))
            for media in list(content.values()) + [op.get("requestBody", {}).get("content", {}).get("application/json", {})]:
                if "example" in media and "schema" in media:
                    for message in fit(doc, media["schema"], media["example"]):
                        problems.append("%s %s: its example does not fit: %s" % (name, status, message))
    return problems


def server_routes(server_bin, args):
    run = subprocess.run([server_bin, "routes"] + args, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        sys.exit("check_openapi: `%s routes` exited %d:\n%s" % (server_bin, run.returncode, run.stderr[-4000:]))
    return json.loads(run.stdout)


def check_routes(doc, routes):
    problems = []
    served = {(r["method"].upper(), r["path"]): r["auth"] for r in routes}
    if len(served) != len(routes):
        problems.append("the route table lists a method and path twice")
    documented = {(m.upper(), p): op.get("x-edgeprune-auth") for p, m, op in operations(doc)}
    for key in sorted(served.keys() - documented.keys()):
        problems.append("served but not in the document: %s %s [%s]" % (key[0], key[1], served[key]))
    for key in sorted(documented.keys() - served.keys()):
        problems.append("in the document but not served: %s %s [%s]" % (key[0], key[1], documented[key]))
    for key in sorted(served.keys() & documented.keys()):
        if served[key] != documented[key]:
            problems.append("%s %s: the route needs %s, the document says %s" % (key[0], key[1], served[key], documented[key]))
    return problems, len(served)


def match_path(doc, raw_path):
    """The document's path template for a request path (literal segments win over parameters)."""
    parts = raw_path.split("/")
    best = None
    for template in doc.get("paths", {}):
        t = template.split("/")
        if len(t) != len(parts):
            continue
        literal = 0
        for a, b in zip(t, parts):
            if a.startswith("{") and a.endswith("}"):
                if not b:
                    break
            elif a != urllib.parse.unquote(b):
                break
            else:
                literal += 1
        else:
            if best is None or literal > best[1]:
                best = (template, literal)
    return best[0] if best else None


def check_capture(doc, lines):
    problems, seen = [], set()
    for n, line in enumerate(lines, 1):
        c = json.loads(line)
        method, status = c["method"].lower(), str(c["status"])
        raw_path = c["target"].split("?", 1)[0]
        where = "line %d: %s %s → %s" % (n, c["method"], c["target"][:120], status)
        template = match_path(doc, raw_path)
        error = c["body"].get("error") if isinstance(c.get("body"), dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        # The router's own answers for paths and methods no route has (docs/api.md, "HTTP conventions").
        server_wide = (template is None and status == "404" and code == "not_found") or \
                      (template is not None and method not in doc["paths"][template] and status == "405"
                       and code == "method_not_allowed")
        if server_wide:
            problems += ["%s: %s" % (where, m) for m in fit(doc, {"$ref": "#/components/schemas/Error"}, c["body"])]
            continue
        if template is None:
            problems.append("%s: no path of the document matches" % where)
            continue
        op = doc["paths"][template].get(method)
        if op is None:
            problems.append("%s: the document has no %s for %s" % (where, c["method"], template))
            continue
        response = op["responses"].get(status) or op["responses"].get(status[0] + "XX") or op["responses"].get("default")
        if response is None:
            problems.append("%s: status %s is not among %s's responses (%s)" % (
                where, status, op.get("operationId"), ", ".join(op["responses"])))
            continue
        seen.add((method.upper(), template, status))
        content = response.get("content", {})
        media = c.get("content_type", "").split(";")[0].strip()
        if not content:
            if c.get("body") not in (None, ""):
                problems.append("%s: the document declares no body, one came" % where)
            continue
        if media not in content:
            problems.append("%s: content type %r, the document has %s" % (where, media, ", ".join(content)))
            continue
        if media == "application/json" and "schema" in content[media]:
            problems += ["%s: %s" % (where, m) for m in fit(doc, content[media]["schema"], c["body"])]
    return problems, seen


def report(title, problems, checked):
    for p in problems:
        print("  " + p)
    print("%s: %d checked, %d problem(s)" % (title, checked, len(problems)))
    print("%d passed, %d failed" % (1 if not problems else 0, 1 if problems else 0))
    return 1 if problems else 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("document", "routes", "responses"):
        print(__doc__, file=sys.stderr)
        return 2
    doc = load(argv[2])
    if argv[1] == "document":
        n = sum(1 for _ in operations(doc))
        return report("openapi document (%d operations)" % n, check_document(doc), n)
    if argv[1] == "routes":
        if len(argv) < 4:
            print(__doc__, file=sys.stderr)
            return 2
        problems, n = check_routes(doc, server_routes(argv[3], argv[4:]))
        return report("openapi routes (%d served)" % n, problems, n)
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[3], encoding="utf-8") as f:
        lines = [l for l in f if l.strip()]
    if not lines:
        return report("openapi responses", ["%s holds no captured response: did the e2e test run with "
                                            "EDGEPRUNE_API_CAPTURE?" % argv[3]], 0)
    problems, seen = check_capture(doc, lines)
    total = sum(len(op["responses"]) for _, _, op in operations(doc))
    print("covered %d of %d documented (operation, status) pairs:" % (len(seen), total))
    for m, p, s in sorted(seen, key=lambda x: (x[1], x[0], x[2])):
        print("  %s %s %s" % (m, p, s))
    return report("openapi responses", problems, len(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
