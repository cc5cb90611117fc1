#!/usr/bin/env python3
"""Sends the same Fashion-MNIST test images to two agents' local inference APIs, one request to
each in turn per image (so both see the same machine load), and prints one JSON object: per agent
the client-side latency (p50, p95, mean), the forward time the agent reported (`latency_ms`,
p50 and p95), its accuracy and its variant; across the two, how many predicted classes agree
and the largest absolute difference between their scores. Standard library only.

    infer_compare.py <fashion-mnist dir> <count> <name>=<port> <name>=<port> [--warmup=N]
"""
import http.client
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy"))
from quickstart_infer import find, read_idx  # noqa: E402  (the IDX reader the quickstart uses)


def quantile(values, q):
    s = sorted(values)
    return s[int(q * (len(s) - 1))]


def infer(conn, body, h, w):
    start = time.perf_counter()
    conn.request("POST", "/v1/infer", body, {"Content-Type": "application/octet-stream",
                                             "X-Shape": "1,1,%d,%d" % (h, w)})
    resp = conn.getresponse()
    payload = resp.read()
    elapsed = (time.perf_counter() - start) * 1000.0
    if resp.status != 200:
        sys.exit("infer_compare: HTTP %d: %s" % (resp.status, payload[:200]))
    return elapsed, json.loads(payload)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--warmup")]
    warmup = 5
    for a in sys.argv[1:]:
        if a.startswith("--warmup="):
            warmup = int(a.split("=", 1)[1])
    if len(args) != 4:
        sys.exit(__doc__)
    directory, count = args[0], int(args[1])
    agents = [tuple(a.split("=", 1)) for a in args[2:]]
    dims, pixels = read_idx(find(directory, "t10k-images-idx3-ubyte"))
    _, labels = read_idx(find(directory, "t10k-labels-idx1-ubyte"))
    h, w = dims[1], dims[2]
    count = min(count, dims[0])
    conns = {name: http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
             for name, port in agents}
    stats = {name: {"client_ms": [], "forward_ms": [], "correct": 0, "variants": set()}
             for name, _ in agents}
    agree, max_diff = 0, 0.0

    def body_of(i):
        image = pixels[i * h * w:(i + 1) * h * w]
        return struct.pack("<%df" % (h * w), *[p / 255.0 for p in image])

    for i in range(warmup):  # not counted: first requests may touch cold code and pages
        for name, _ in agents:
            infer(conns[name], body_of(i), h, w)
    for i in range(count):
        body = body_of(i)
        answers = {}
        for name, _ in agents:
            elapsed, answer = infer(conns[name], body, h, w)
            s = stats[name]
            s["client_ms"].append(elapsed)
            s["forward_ms"].append(float(answer["latency_ms"]))
            s["correct"] += int(answer["class"] == labels[i])
            s["variants"].add(answer["variant_id"])
            answers[name] = answer
        a, b = (answers[name] for name, _ in agents)
        agree += int(a["class"] == b["class"])
        if len(a["scores"]) != len(b["scores"]):
            sys.exit("infer_compare: %d scores against %d" % (len(a["scores"]), len(b["scores"])))
        max_diff = max([max_diff] + [abs(x - y) for x, y in zip(a["scores"], b["scores"])])
    out = {"images": count, "warmup": warmup, "classes_agree": agree,
           "max_abs_score_diff": max_diff, "agents": {}}
    for name, _ in agents:
        s = stats[name]
        out["agents"][name] = {
            "variants": sorted(s["variants"]),
            "accuracy": s["correct"] / count,
            "client_ms": {"p50": quantile(s["client_ms"], 0.5), "p95": quantile(s["client_ms"], 0.95),
                          "mean": sum(s["client_ms"]) / count},
            "forward_ms": {"p50": quantile(s["forward_ms"], 0.5),
                           "p95": quantile(s["forward_ms"], 0.95)},
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
