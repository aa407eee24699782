"""Blind embeddings over Kafka (tests/integration/embed.sh).

A worker serves the ENCRYPTED all-MiniLM-L6-v2 (ee-bert-v1). The key
holder's ee-producer tokenizes with the plaintext model, encrypts the ids,
sends embed jobs and decrypts the replies. Checked against ee-model embed on
the plaintext model (an oracle the service never touches):
  - every decrypted embedding equals the plaintext one (max abs <= 1e-5);
  - the embeddings on the wire are not the plaintext ones, and their
    cosines equal the plaintext cosines (<= 1e-5): a vector index over
    them ranks exactly as over plaintext;
  - a generate job sent to the encoder gets unsupported_task, an embed job
    asking to stream gets bad_request; both as replies, nothing lost.
"""
import argparse
import json
import math
import os
import sys
import time
import uuid

from confluent_kafka import Producer

from itest_common import Worker, collect_replies, create_topic, run

TEXTS = [
    "The cat sits outside.",
    "A man is playing guitar.",
    "The new movie is awesome.",
    "A woman watches TV.",
    "Das ist ein deutscher Satz mit Umlauten: äöü.",
    "日本語の文も埋め込めます。",
    "Encrypted vectors keep their cosine similarities.",
    "",
]


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def main():
    ap = argparse.ArgumentParser()
    for a in ("--bin", "--model", "--bootstrap", "--work", "--cache"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    ee_model = os.path.join(args.bin, "ee-model")
    os.makedirs(args.cache, exist_ok=True)
    key = os.path.join(args.cache, "embed.eekey")
    enc = os.path.join(args.cache, "minilm.enc.gguf")
    if not os.path.exists(key):
        run([ee_model, "keygen", "--out", key])
    info = json.loads(run([ee_model, "info", "--model", enc, "--json"])) if os.path.exists(enc) else {}
    if info.get("scheme") != "ee-bert-v1" or info.get("scheme_status") != "current":
        run([ee_model, "encrypt", "--model", args.model, "--key", key, "--out", enc])
    key_id = json.loads(run([ee_model, "info", "--model", enc, "--json"]))["key_id"]
    create_topic(args.bootstrap, "ee.requests.minilm.small", 2)

    w = Worker(args.bin, args.bootstrap, args.work, "wemb", [f"minilm={enc}"], threads=1)
    failures = 0
    try:
        w.wait_assigned(timeout=60)

        # 1. the key holder's producer against the plaintext oracle
        t0 = time.time()
        texts = [t for t in TEXTS if t]
        pf = os.path.join(args.work, "texts.txt")
        with open(pf, "w") as f:
            f.write("\n".join(texts) + "\n")
        rt = f"replies-embed-{uuid.uuid4().hex[:8]}"
        out = run([os.path.join(args.bin, "ee-producer"), "submit", "--bootstrap", args.bootstrap,
                   "--model", "minilm", "--task", "embed", "--key", key, "--plain-model",
                   args.model, "--prompts-file", pf, "--reply-to", rt, "--wait", "--json",
                   "--timeout-ms", "60000"])
        res = [json.loads(x) for x in out.splitlines() if x.startswith("{") and '"result"' in x]
        assert len(res) == len(texts) and all(r["status"] == "ok" for r in res), out[-2000:]
        plain = [json.loads(run([ee_model, "embed", "--model", args.model, "--text", t, "--json"]))["embedding"]
                 for t in texts]
        dec = [r["embedding"] for r in res]
        wire = [r["encrypted_embedding"] for r in res]
        # match results to texts by the decrypted vector (ids are random per job)
        worst = 0.0
        order = []
        for p in plain:
            k = min(range(len(dec)), key=lambda i: max(abs(a - b) for a, b in zip(dec[i], p)))
            order.append(k)
            worst = max(worst, max(abs(a - b) for a, b in zip(dec[k], p)))
        assert sorted(order) == list(range(len(texts))), "two texts decrypted to the same vector"
        wire = [wire[k] for k in order]
        gap = min(max(abs(a - b) for a, b in zip(wire[i], plain[i])) for i in range(len(texts)))
        cw = max(abs(cos(wire[i], wire[j]) - cos(plain[i], plain[j]))
                 for i in range(len(texts)) for j in range(i + 1, len(texts)))
        assert worst <= 1e-5, f"decrypted embedding differs from plaintext by {worst:.3g}"
        assert gap > 1e-2, f"an embedding on the wire equals the plaintext one ({gap:.3g})"
        assert cw <= 1e-5, f"wire cosines differ from plaintext by {cw:.3g}"
        print(f"  PASS producer_embed ({time.time() - t0:.1f}s): {len(texts)} texts through Kafka; "
              f"decrypted vs ee-model embed (plaintext) max abs {worst:.2g}; on the wire != plaintext "
              f"(min gap {gap:.2g}); wire cosines vs plaintext max abs {cw:.2g}", flush=True)

        # 2. refusals answered as replies
        t0 = time.time()
        rt2 = f"replies-embed-bad-{uuid.uuid4().hex[:8]}"
        create_topic(args.bootstrap, rt2, 1)
        p = Producer({"bootstrap.servers": args.bootstrap})
        base = {"v": 1, "reply_to": rt2, "model": "minilm", "key_id": key_id,
                "input": {"tokens": [101, 102]}}
        cases = {"gen": dict(base, id="gen-1", task="generate"),
                 "stream": dict(base, id="stream-1", task="embed", stream=True)}
        for c in cases.values():
            p.produce("ee.requests.minilm.small", json.dumps(c).encode(), key=c["id"].encode())
        p.flush(15)
        got = collect_replies(args.bootstrap, rt2, [c["id"] for c in cases.values()], timeout=30)
        assert got.get("gen-1", {}).get("error", {}).get("code") == "unsupported_task", got
        assert got.get("stream-1", {}).get("error", {}).get("code") == "bad_request", got
        print(f"  PASS refusals ({time.time() - t0:.1f}s): generate on an encoder -> "
              f"unsupported_task ({got['gen-1']['error']['message']!r}); embed with stream -> "
              f"bad_request", flush=True)
    except Exception as e:  # noqa: BLE001
        failures += 1
        print(f"  FAIL: {e}", flush=True)
        print("--- worker log tail:\n" + w.tail(15), flush=True)
    finally:
        w.stop()
    print(f"embed_test: {'FAILED' if failures else 'ok'} ({failures} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
