#!/usr/bin/env python3
"""Sealed and signed jobs end to end on a real Apache Kafka 3.9.

A worker (ee-consumer, require_sealed = 1, require_signed = 1, two tenants)
serves model "sealm". Checked with clients nobody here wrote where it
matters: confluent-kafka produces the crafted records, PyNaCl and hashlib
sign and seal them independently of our C code, kcat sends the record that
`ee-producer seal` made.

  ok_sealed_signed   ee-producer submit --pool-pk --client-key: the answer
                     decrypts to local encrypted generation's text
  kcat_interop       ee-producer seal + kcat -P, then ee-producer wait
  broker_disk        the request and reply topics' log segments and the
                     DLQ hold no request JSON and no token ids
  refusals           unsigned, unsealed, badly signed, unknown tenant,
                     forbidden model, replayed record, stale timestamp,
                     sealed to another key: exactly one error reply each,
                     with the right code, and no inference
  dead_letter        a sealed record without routing headers: a dead
                     letter that keeps only the sealed bytes
"""
import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import nacl.public
import nacl.signing
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from itest_common import ensure_encrypted, request_digest

A = None
TOPIC = "ee.requests.sealm.small"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])} ... failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def binp(name):
    return os.path.join(A.bin, name)


def create_topic(name, parts=1):
    ad = AdminClient({"bootstrap.servers": A.bootstrap})
    for f in ad.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)]).values():
        try:
            f.result(15)
        except Exception as e:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    end = time.time() + 15
    while time.time() < end:
        t = ad.list_topics(name, timeout=5).topics.get(name)
        if t and t.error is None and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name}: no leader")


PROD = None


def produce(topic, value, key, headers):
    global PROD
    if PROD is None:
        PROD = Producer({"bootstrap.servers": A.bootstrap, "linger.ms": 1})
    errs = []
    PROD.produce(topic, value=value, key=key, headers=headers,
                 on_delivery=lambda e, m: errs.append(e) if e else None)
    PROD.flush(15)
    if errs:
        raise AssertionError(f"produce: {errs[0]}")


def read_all(topic, seconds=4):
    c = Consumer({"bootstrap.servers": A.bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, end = [], time.time() + seconds
    while time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append((m.key(), m.value(), dict((k, v.decode()) for k, v in (m.headers() or []))))
    c.close()
    return out


def seed_of(keyfile):
    raw = open(keyfile, "rb").read()
    assert raw[:8] in (b"EESIGN01", b"EEPOOL01"), raw[:8]
    return raw[8:40]


def signature(seed, topic, id_, reply_to, tenant, ts, deadline, value):
    digest = request_digest(topic, id_, reply_to, tenant, ts, deadline, value)
    return nacl.signing.SigningKey(seed).sign(digest).signature.hex()


def main():
    global A
    ap = argparse.ArgumentParser()
    for a in ("--bin", "--model", "--bootstrap", "--work", "--cache", "--kafka-data"):
        ap.add_argument(a, required=True)
    A = ap.parse_args()
    w = A.work
    em = binp("ee-model")
    key, enc, key_id = ensure_encrypted(run, em, A.model, A.cache)
    pool_pk = run([binp("ee-consumer"), "keygen", "--out", f"{w}/pool.key"]).strip()
    other_pool = run([binp("ee-consumer"), "keygen", "--out", f"{w}/other.key"]).strip()
    acme_pk = run([binp("ee-producer"), "keygen", "--out", f"{w}/acme.key"]).strip()
    beta_pk = run([binp("ee-producer"), "keygen", "--out", f"{w}/beta.key"]).strip()
    reply = f"ee.replies.sealed-{uuid.uuid4().hex[:8]}"
    create_topic(TOPIC, 2)
    create_topic(reply, 1)
    with open(f"{w}/w.ini", "w") as f:
        f.write(f"[worker]\nclasses = small\nrequire_sealed = 1\nrequire_signed = 1\n"
                f"pool_key = {w}/pool.key\nreplay_window_ms = 60000\nmetrics_port = 0\n"
                f"grace_ms = 500\n[model sealm]\npath = {enc}\n"
                f"[tenant acme]\npublic_key = {acme_pk}\nmodels = sealm\nclasses = small\n"
                f"[tenant beta]\npublic_key = {beta_pk}\nmodels = other\n")
    log = open(f"{w}/worker.log", "w")
    worker = subprocess.Popen([binp("ee-consumer"), "--config", f"{w}/w.ini", "--bootstrap",
                               A.bootstrap, "--threads", "2", "--kafka", "session.timeout.ms=6000"],
                              stdout=log, stderr=subprocess.STDOUT)
    passed = failed = 0

    def events():
        return [json.loads(ln) for ln in open(f"{w}/worker.log") if ln.startswith("{")]

    def check(name, fn):
        nonlocal passed, failed
        t0 = time.time()
        try:
            msg = fn()
            passed += 1
            print(f"  PASS {name} ({time.time() - t0:.1f}s): {msg}", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"  FAIL {name} ({time.time() - t0:.1f}s): {e}", flush=True)
            print("".join([ln for ln in open(f"{w}/worker.log") if "librdkafka" not in ln][-10:]))

    try:
        end = time.time() + 60
        while not any(e.get("event") == "partitions_assigned" and e.get("partitions")
                      for e in events()):
            if worker.poll() is not None or time.time() > end:
                raise AssertionError(f"worker not ready: {open(f'{w}/worker.log').read()[-2000:]}")
            time.sleep(0.2)
        common = ["--bootstrap", A.bootstrap, "--model", "sealm", "--key", key,
                  "--plain-model", A.model, "--reply-to", reply]
        prompt = "What is the capital of Italy?"

        def ok_sealed_signed():
            out = run([binp("ee-producer"), "submit", *common, "--chat", "--prompt", prompt,
                       "--max-tokens", "12", "--wait", "--json", "--pool-pk", pool_pk,
                       "--client-key", f"{w}/acme.key", "--tenant", "acme"])
            final = [json.loads(ln) for ln in out.splitlines() if '"status"' in ln][-1]
            assert final["status"] == "ok", final
            local = json.loads(run([em, "generate", "--model", enc, "--key", key, "--plain-model",
                                    A.model, "--chat", "--prompt", prompt, "--max-tokens", "12",
                                    "--json"]))
            assert final["text"] == local["text"], (final["text"], local["text"])
            return f"decrypted '{final['text'][:40]}' = local generation"

        def kcat_interop():
            ids = json.loads(run([em, "tokenize", "--model", A.model, "--key", key, "--chat",
                                  "--prompt", "Say hi.", "--json"]))
            jid = f"kcat-{uuid.uuid4().hex[:8]}"
            req = {"v": 1, "id": jid, "model": "sealm", "key_id": key_id, "task": "generate",
                   "input": {"tokens": ids}, "params": {"max_tokens": 4}, "reply_to": reply}
            open(f"{w}/req.json", "w").write(json.dumps(req))
            flags = run([binp("ee-producer"), "seal", "--in", f"{w}/req.json", "--out",
                         f"{w}/rec.bin", "--topic", TOPIC, "--pool-pk", pool_pk, "--client-key",
                         f"{w}/acme.key", "--tenant", "acme"]).split()
            assert open(f"{w}/rec.bin", "rb").read()[:8] == b"EESEAL1:"
            run(["kcat", "-P", "-b", A.bootstrap, "-t", TOPIC, *flags, f"{w}/rec.bin"])
            out = run([binp("ee-producer"), "wait", "--bootstrap", A.bootstrap, "--reply-to", reply,
                       "--id", jid, "--key", key, "--plain-model", A.model, "--client-key",
                       f"{w}/acme.key", "--json", "--timeout-ms", "60000"])
            final = [json.loads(ln) for ln in out.splitlines() if '"status"' in ln][-1]
            assert final["status"] == "ok", final
            return f"kcat record answered: '{final['text']}'"

        def broker_disk():
            for _ in range(20):  # segments are written as records arrive
                files = [f for d in (TOPIC, reply) for f in
                         glob.glob(os.path.join(A.kafka_data, "*", f"{d}-*", "*.log"))]
                if files and sum(os.path.getsize(f) for f in files) > 0:
                    break
                time.sleep(0.5)
            assert files, f"no log segments under {A.kafka_data}"
            blob = b"".join(open(f, "rb").read() for f in files)
            for bad in (b'"tokens"', b'"input"', b'"output"', key_id.encode()):
                assert bad not in blob, f"{bad!r} found in the broker's log segments"
            replies = read_all(reply, 3)
            assert replies and all(v[:8] == b"EESEAL1:" for _, v, _ in replies), \
                "a reply travelled unsealed"
            return (f"{len(files)} segment files, {len(blob)} bytes: no request JSON, no ids, "
                    f"no key id; {len(replies)} replies all sealed")

        def refusals():
            acme, beta = seed_of(f"{w}/acme.key"), seed_of(f"{w}/beta.key")
            ids = json.loads(run([em, "tokenize", "--model", A.model, "--key", key, "--prompt",
                                  "hello", "--json"]))
            rk = nacl.public.PrivateKey.generate()

            def body(jid):
                return json.dumps({"v": 1, "id": jid, "model": "sealm", "key_id": key_id,
                                   "task": "generate", "input": {"tokens": ids},
                                   "params": {"max_tokens": 1}, "reply_to": reply,
                                   "reply_pk": bytes(rk.public_key).hex()}).encode()

            def sealed(b, pk=pool_pk):
                return b"EESEAL1:" + nacl.public.SealedBox(nacl.public.PublicKey(bytes.fromhex(pk))).encrypt(b)

            def send(jid, value, tenant=None, seed=None, ts=None):
                h = [("ee-id", jid.encode()), ("ee-reply-to", reply.encode())]
                if tenant:
                    ts = ts if ts is not None else int(time.time() * 1000)
                    sig = signature(seed, TOPIC, jid, reply, tenant, ts, 0, value)
                    h += [("ee-tenant", tenant.encode()), ("ee-ts", str(ts).encode()),
                          ("ee-sig", sig.encode())]
                produce(TOPIC, value, jid.encode(), h)
                return h

            want = {}
            u = uuid.uuid4().hex[:6]
            j = f"r-unsigned-{u}"; send(j, sealed(body(j))); want[j] = "unauthenticated"
            j = f"r-unsealed-{u}"; send(j, body(j), "acme", acme); want[j] = "unauthenticated"
            j = f"r-badsig-{u}"; send(j, sealed(body(j)), "acme", beta); want[j] = "unauthenticated"
            j = f"r-tenant-{u}"; send(j, sealed(body(j)), "zed", acme); want[j] = "unauthenticated"
            j = f"r-forbid-{u}"; send(j, sealed(body(j)), "beta", beta); want[j] = "forbidden"
            j = f"r-otherkey-{u}"; send(j, sealed(body(j), other_pool), "acme", acme)
            want[j] = "unauthenticated"
            j = f"r-stale-{u}"
            send(j, sealed(body(j)), "acme", acme, ts=int(time.time() * 1000) - 600000)
            want[j] = "replayed"
            # the same record twice: the second is a replay
            j = f"r-replay-{u}"
            v = sealed(body(j))
            h = send(j, v, "acme", acme)
            time.sleep(1.5)
            produce(TOPIC, v, j.encode(), h)
            end = time.time() + 60
            got = {}
            while time.time() < end:
                got = {}
                for k, val, _ in read_all(reply, 2):
                    if val[:8] == b"EESEAL1:":
                        try:
                            val = nacl.public.SealedBox(rk).decrypt(val[8:])
                        except Exception:  # noqa: BLE001
                            continue  # another job's reply key
                    r = json.loads(val)
                    got.setdefault(r["id"], []).append(r)
                if all(i in got for i in want) and len(got.get(f"r-replay-{u}", [])) >= 2:
                    break
                time.sleep(1)
            for i, code in want.items():
                rs = got.get(i, [])
                assert len(rs) == 1, f"{i}: {len(rs)} replies ({rs})"
                assert rs[0]["status"] == "error" and rs[0]["error"]["code"] == code, (i, rs[0])
            rp = sorted(got.get(f"r-replay-{u}", []), key=lambda r: r["status"])
            assert [r["status"] for r in rp] == ["error", "ok"] and \
                rp[0]["error"]["code"] == "replayed", rp
            # refused jobs never ran: their job_done events carry no timings
            done = {e["id"]: e for e in events() if e.get("event") == "job_done" and "id" in e}
            for i in want:
                assert i in done and "prefill_ms" not in done[i], done.get(i)
            return ", ".join(f"{i.split('-')[1]}={c}" for i, c in want.items()) + \
                ", replay: ok then replayed; none ran inference"

        def dead_letter():
            jid = f"dl-{uuid.uuid4().hex[:6]}"
            b = json.dumps({"v": 1, "id": jid, "model": "sealm", "key_id": key_id,
                            "task": "generate", "input": {"tokens": [1, 2, 3]},
                            "reply_to": reply}).encode()
            v = b"EESEAL1:" + nacl.public.SealedBox(
                nacl.public.PublicKey(bytes.fromhex(pool_pk))).encrypt(b)
            produce(TOPIC, v, jid.encode(), [])  # no routing headers, no signature
            end = time.time() + 40
            while time.time() < end:
                dl = [x for x in read_all("ee.dlq", 2) if x[1] == v]
                if dl:
                    _, val, hd = dl[0]
                    assert hd.get("ee-dlq-error-code") == "unauthenticated", hd
                    assert b'"tokens"' not in val and b"input" not in val
                    return f"dead letter {hd.get('ee-dlq-error-code')}: sealed bytes only"
                time.sleep(1)
            raise AssertionError("no dead letter")

        check("ok_sealed_signed", ok_sealed_signed)
        check("kcat_interop", kcat_interop)
        check("broker_disk", broker_disk)
        check("refusals", refusals)
        check("dead_letter", dead_letter)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(40)
            except subprocess.TimeoutExpired:
                worker.kill()
        log.close()
    print(f"sealed: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
