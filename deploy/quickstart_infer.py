#!/usr/bin/env python3
"""Sends the Fashion-MNIST test set through an agent's local inference API (raw float32 bodies
with X-Shape) and prints "accuracy p95_ms" measured by this client. Standard library only.

    quickstart_infer.py <fashion-mnist dir> <local api port> [limit]
"""
import gzip
import http.client
import os
import struct
import sys
import time


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    sys.exit("quickstart_infer: %s not found in %s" % (stem, directory))


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    dims, pixels = read_idx(find(directory, "t10k-images-idx3-ubyte"))
    _, labels = read_idx(find(directory, "t10k-labels-idx1-ubyte"))
    count, h, w = dims[0], dims[1], dims[2]
    count = min(count, limit)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    correct, latencies = 0, []
    for i in range(count):
        image = pixels[i * h * w:(i + 1) * h * w]
        body = struct.pack("<%df" % (h * w), *[p / 255.0 for p in image])
        start = time.perf_counter()
        conn.request("POST", "/v1/infer", body, {"Content-Type": "application/octet-stream",
                                                 "X-Shape": "1,1,%d,%d" % (h, w)})
        resp = conn.getresponse()
        payload = resp.read()
        latencies.append((time.perf_counter() - start) * 1000.0)
        if resp.status != 200:
            sys.exit("quickstart_infer: HTTP %d: %s" % (resp.status, payload[:200]))
        import json
        if json.loads(payload)["class"] == labels[i]:
            correct += 1
    latencies.sort()
    print("%.4f %.2f" % (correct / count, latencies[int(0.95 * (len(latencies) - 1))]))


if __name__ == "__main__":
    main()
