"""Blind image classification over Kafka (tests/integration/vision.sh).

A worker serves the ENCRYPTED digits CNN (ee-cnn-v1, no stem). The key
holder's ee-producer reads each image file (PNG or PGM), runs the stem of
the plaintext model, encrypts the feature map, sends classify jobs and
decrypts the class scores. Checked against ee-model classify on the
plaintext model and the same files (an oracle the service never touches):
  - every test image of the split (360, half PNG, half PGM) gets the
    plaintext prediction, and its decrypted scores equal the plaintext
    scores (max abs <= 1e-4);
  - the scores on the wire are permuted: their argmax is not the
    prediction for most images;
  - no image pixel row and no plaintext score is on the request or reply
    topics (the requests carry 1024 floats of feature map);
  - refusals come back as replies, nothing lost: a feature map of the wrong
    size and tokens instead of a map (bad_request), generate on the
    classifier (unsupported_task);
  - sealed and signed: a worker with require_sealed and require_signed
    answers ee-producer classify --pool-pk --client-key --tenant with the
    same predictions, and its request topic holds no feature map.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Producer

from itest_common import Worker, collect_replies, create_topic, read_topic, run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser()
    for a in ("--bin", "--model", "--test-set", "--bootstrap", "--work", "--cache"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    ee_model = os.path.join(args.bin, "ee-model")
    py = sys.executable
    os.makedirs(args.cache, exist_ok=True)
    key = os.path.join(args.cache, "vision.eekey")
    enc = os.path.join(args.cache, "digits.enc.gguf")
    if not os.path.exists(key):
        run([ee_model, "keygen", "--out", key])
    # encrypted afresh: the CNN is retrained when its trainer changes
    run([ee_model, "encrypt", "--model", args.model, "--key", key, "--out", enc])
    key_id = json.loads(run([ee_model, "info", "--model", enc, "--json"]))["key_id"]
    req_topic = "ee.requests.digits.small"
    create_topic(args.bootstrap, req_topic, 2)
    imgdir = os.path.join(args.work, "img")
    run([py, os.path.join(ROOT, "tools", "train_cnn.py"), "--export-images", imgdir, "--count", "360"])
    images = sorted(os.path.join(imgdir, f) for f in os.listdir(imgdir))
    assert len(images) == 360, len(images)

    w = Worker(args.bin, args.bootstrap, args.work, "wvis", [f"digits={enc}"], threads=1)
    failures = 0
    try:
        w.wait_assigned(timeout=60)

        # 1. the key holder's producer against the plaintext oracle
        t0 = time.time()
        rt = f"replies-vision-{uuid.uuid4().hex[:8]}"
        cmd = [os.path.join(args.bin, "ee-producer"), "classify", "--bootstrap", args.bootstrap,
               "--model", "digits", "--key", key, "--plain-model", args.model, "--reply-to", rt,
               "--json", "--timeout-ms", "120000"]
        for im in images:
            cmd += ["--image", im]
        res = {}
        for line in run(cmd).splitlines():
            r = json.loads(line)
            res[r["image"]] = r
        blind_s = time.time() - t0
        assert set(res) == set(images), f"{len(res)} results for {len(images)} images"
        oracle = {}
        ocmd = [ee_model, "classify", "--model", args.model, "--json"]
        for im in images:
            ocmd += ["--image", im]
        for line in run(ocmd).splitlines():
            r = json.loads(line)
            oracle[r["image"]] = r
        same = sum(res[i]["class"] == oracle[i]["class"] for i in images)
        worst = max(abs(a - b) for i in images for a, b in zip(res[i]["scores"], oracle[i]["scores"]))
        truth = {i: int(os.path.basename(i).split("_label")[1].split(".")[0]) for i in images}
        acc = sum(res[i]["class"] == truth[i] for i in images) / len(images)
        wire_same = sum(max(range(10), key=lambda k: res[i]["encrypted_scores"][k]) == res[i]["class"]
                        for i in images)
        passes = [e["jobs"] for e in w.events() if e.get("event") == "pass_done"]
        assert sum(passes) == len(images), f"{sum(passes)} jobs in passes for {len(images)} images"
        assert max(passes) > 1, "every classify job ran alone: the worker did not batch"
        assert same == len(images), f"{len(images) - same} predictions differ from plaintext"
        assert worst <= 1e-4, f"decrypted scores differ from plaintext by {worst:.3g}"
        assert wire_same <= len(images) // 2, f"{wire_same} wire argmaxes equal the prediction"
        print(f"  PASS producer_classify ({blind_s:.1f}s blind, {len(images)} images: "
              f"{sum(i.endswith('.png') for i in images)} PNG, {sum(i.endswith('.pgm') for i in images)} PGM): "
              f"{same}/{len(images)} predictions equal ee-model classify on the plaintext model, "
              f"scores max abs {worst:.2g}; accuracy vs labels {acc:.4f}; wire argmax = prediction "
              f"for {wire_same}/{len(images)} (a permutation of 10 classes); {len(passes)} passes of up to "
              f"{max(passes)} jobs", flush=True)

        # 2. what Kafka holds: feature maps of the right size, no pixels, no plaintext scores
        t0 = time.time()
        reqs = [json.loads(v) for v in read_topic(args.bootstrap, req_topic)]
        reqs = [r for r in reqs if r.get("task") == "classify" and r.get("key_id") == key_id]
        assert len(reqs) >= len(images), f"{len(reqs)} classify requests on {req_topic}"
        assert all(len(r["input"]["fmap"]) == 1024 and "tokens" not in r["input"] for r in reqs)
        reps = [json.loads(v) for v in read_topic(args.bootstrap, rt)]
        wire_scores = [x for r in reps for x in r.get("output", {}).get("scores", [])]
        assert len(wire_scores) == 10 * len(images), len(wire_scores)
        print(f"  PASS wire ({time.time() - t0:.1f}s): {len(reqs)} requests carry a 16x8x8 encrypted "
              f"feature map and no tokens; {len(reps)} replies carry 10 permuted scores", flush=True)

        # 3. refusals answered as replies
        t0 = time.time()
        rt2 = f"replies-vision-bad-{uuid.uuid4().hex[:8]}"
        create_topic(args.bootstrap, rt2, 1)
        p = Producer({"bootstrap.servers": args.bootstrap})
        base = {"v": 1, "reply_to": rt2, "model": "digits", "key_id": key_id, "task": "classify"}
        cases = {"short-1": dict(base, id="short-1", input={"fmap": [0.5] * 1000}),
                 "tokens-1": dict(base, id="tokens-1", input={"tokens": [1, 2]}),
                 "text-1": dict(base, id="text-1", input={"fmap": ["x"] * 1024}),
                 "gen-1": dict(base, id="gen-1", task="generate", input={"tokens": [1, 2]})}
        for c in cases.values():
            p.produce(req_topic, json.dumps(c).encode(), key=c["id"].encode())
        p.flush(15)
        got = collect_replies(args.bootstrap, rt2, [c["id"] for c in cases.values()], timeout=30)
        code = {k: got.get(k, {}).get("error", {}).get("code") for k in cases}
        assert code == {"short-1": "bad_request", "tokens-1": "bad_request",
                        "text-1": "bad_request", "gen-1": "unsupported_task"}, got
        assert "1024" in got["short-1"]["error"]["message"], got["short-1"]
        print(f"  PASS refusals ({time.time() - t0:.1f}s): short map -> bad_request "
              f"({got['short-1']['error']['message']!r}); tokens, non-numbers -> bad_request; "
              f"generate -> unsupported_task", flush=True)

        # 4. sealed and signed jobs: the same images through a worker that
        # takes nothing else; the broker holds no feature map
        t0 = time.time()
        sw = os.path.join(args.work, "sealed")
        os.makedirs(sw, exist_ok=True)
        pool_pk = run([os.path.join(args.bin, "ee-consumer"), "keygen", "--out", f"{sw}/pool.key"]).strip()
        acme_pk = run([os.path.join(args.bin, "ee-producer"), "keygen", "--out", f"{sw}/acme.key"]).strip()
        stopic = "ee.requests.sdigits.small"
        create_topic(args.bootstrap, stopic, 1)
        with open(f"{sw}/w.ini", "w") as f:
            f.write(f"[worker]\nclasses = small\nrequire_sealed = 1\nrequire_signed = 1\n"
                    f"pool_key = {sw}/pool.key\nreplay_window_ms = 60000\nmetrics_port = 0\n"
                    f"grace_ms = 500\n[model sdigits]\npath = {enc}\n"
                    f"[tenant acme]\npublic_key = {acme_pk}\nmodels = sdigits\nclasses = small\n")
        ws = Worker(args.bin, args.bootstrap, args.work, "wvis-sealed", [], ["--config", f"{sw}/w.ini"],
                    threads=1)
        try:
            ws.wait_assigned(timeout=60)
            few = images[:24]
            cmd = [os.path.join(args.bin, "ee-producer"), "classify", "--bootstrap", args.bootstrap,
                   "--model", "sdigits", "--key", key, "--plain-model", args.model, "--json",
                   "--reply-to", f"replies-vision-sealed-{uuid.uuid4().hex[:8]}", "--timeout-ms", "60000",
                   "--pool-pk", pool_pk, "--client-key", f"{sw}/acme.key", "--tenant", "acme"]
            for im in few:
                cmd += ["--image", im]
            sres = {json.loads(x)["image"]: json.loads(x) for x in run(cmd).splitlines()}
            assert set(sres) == set(few), f"{len(sres)} sealed results for {len(few)} images"
            bad = [i for i in few if sres[i]["class"] != oracle[i]["class"]]
            assert not bad, f"sealed predictions differ for {bad}"
            raw = read_topic(args.bootstrap, stopic)
            assert len(raw) >= len(few), f"{len(raw)} records on {stopic}"
            assert not any(b"fmap" in v or b"classify" in v for v in raw), "a sealed record shows JSON"
            # control: the same command unsealed is refused, and says why
            plain_cmd = cmd[:cmd.index("--pool-pk")] + ["--image", few[0]]
            r = subprocess.run(plain_cmd, capture_output=True, text=True)
            assert r.returncode != 0 and "unauthenticated" in r.stderr, (r.returncode, r.stderr[-500:])
        finally:
            ws.stop()
        print(f"  PASS sealed ({time.time() - t0:.1f}s): {len(few)} images through a worker with "
              f"require_sealed and require_signed: predictions equal the plaintext ones; the "
              f"{len(raw)} records on {stopic} hold no feature map or task name; unsealed: "
              f"refused (unauthenticated)", flush=True)
    except Exception as e:  # noqa: BLE001
        failures += 1
        print(f"  FAIL: {e}", flush=True)
        print("--- worker log tail:\n" + w.tail(15), flush=True)
    finally:
        w.stop()
    print(f"vision_test: {'FAILED' if failures else 'ok'} ({failures} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
