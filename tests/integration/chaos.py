#!/usr/bin/env python3
"""Chaos soak (make test-chaos): sealed and signed jobs at a steady rate
through 3 brokers and 3 workers while a worker is SIGKILLed every 20 s (and
restarted) and one broker is killed and restarted mid-run.

The client is independent of our C code: confluent-kafka produces, PyNaCl
seals and signs (the digest rebuilt with hashlib), PyNaCl opens the sealed
replies. Every reply record is counted, so duplicates (at-least-once
redeliveries) are seen before any dedupe.

Prints: jobs sent, answered, lost (no final reply: must be 0), duplicate
final replies, error replies by code, latency p50/p99 overall and for jobs
sent within 15 s after a fault, and per fault the time until the service
answered a job sent after it. Exit 1 if any job is lost or answered wrong.
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import nacl.public
import nacl.signing
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from itest_common import ensure_encrypted, request_digest

MODEL = "chaos"
TOPIC = f"ee.requests.{MODEL}.small"


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"chaos: {' '.join(cmd[:3])} failed: {r.stderr.strip()}")
    return r.stdout


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096")
    ap.add_argument("--kafka-run", default=".cache/kafka/run")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=5.0, help="jobs per second")
    ap.add_argument("--kill-every", type=float, default=20.0)
    ap.add_argument("--max-tokens", type=int, default=2)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    w = a.work
    em = os.path.join(a.bin, "ee-model")
    key, enc, key_id = ensure_encrypted(run, em, a.model, a.cache)
    pool_pk = bytes.fromhex(run([os.path.join(a.bin, "ee-consumer"), "keygen", "--out",
                                 f"{w}/pool.key"]).strip())
    signer = nacl.signing.SigningKey.generate()
    reply_sk = nacl.public.PrivateKey.generate()
    tokens = json.loads(run([em, "tokenize", "--model", a.model, "--key", key, "--chat",
                             "--prompt", "Say OK.", "--json"]))
    reply = f"ee.replies.chaos-{uuid.uuid4().hex[:6]}"
    ad = AdminClient({"bootstrap.servers": a.bootstrap})
    for t, p in ((TOPIC, 6), (reply, 3)):
        for f in ad.create_topics([NewTopic(t, num_partitions=p, replication_factor=3,
                                            config={"min.insync.replicas": "2"})]).values():
            try:
                f.result(30)
            except Exception as e:  # noqa: BLE001
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise
    with open(f"{w}/w.ini", "w") as f:
        f.write(f"[worker]\nclasses = small\nthreads = 1\nmax_batch = 4\nmax_inflight = 8\n"
                f"grace_ms = 2000\nmetrics_port = 0\nrequire_sealed = 1\nrequire_signed = 1\n"
                f"pool_key = {w}/pool.key\n[topics]\ncreate = 0\n[model {MODEL}]\npath = {enc}\n"
                f"[tenant soak]\npublic_key = {bytes(signer.verify_key).hex()}\nmodels = {MODEL}\n")

    workers = {}

    def start_worker(name):
        log = open(f"{w}/{name}.log", "a")
        workers[name] = subprocess.Popen(
            [os.path.join(a.bin, "ee-consumer"), "--config", f"{w}/w.ini", "--bootstrap",
             a.bootstrap, "--name", name, "--kafka", "session.timeout.ms=6000",
             "--kafka", "heartbeat.interval.ms=500"], stdout=log, stderr=subprocess.STDOUT)

    for n in ("w1", "w2", "w3"):
        start_worker(n)
    time.sleep(8)  # join the group

    sent, replies, lock = {}, {}, threading.Lock()
    faults = []
    done_sending = threading.Event()
    stop = threading.Event()

    def sender():
        p = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True,
                      "linger.ms": 2})
        t0 = time.time()
        for i in range(a.jobs):
            target = t0 + i / a.rate
            while time.time() < target:
                p.poll(0.005)
            jid = f"soak-{i}"
            body = json.dumps({"v": 1, "id": jid, "model": MODEL, "key_id": key_id,
                               "task": "generate", "input": {"tokens": tokens},
                               "params": {"max_tokens": a.max_tokens}, "reply_to": reply,
                               "reply_pk": bytes(reply_sk.public_key).hex()}).encode()
            value = b"EESEAL1:" + nacl.public.SealedBox(nacl.public.PublicKey(pool_pk)).encrypt(body)
            ts = int(time.time() * 1000)
            sig = signer.sign(request_digest(TOPIC, jid, reply, "soak", ts, 0, value)).signature.hex()
            hdr = [("ee-id", jid.encode()), ("ee-reply-to", reply.encode()),
                   ("ee-tenant", b"soak"), ("ee-ts", str(ts).encode()), ("ee-sig", sig.encode())]
            with lock:
                sent[jid] = time.time()
            while True:
                try:
                    p.produce(TOPIC, value=value, key=jid.encode(), headers=hdr)
                    break
                except BufferError:
                    p.poll(0.05)
        p.flush(120)
        done_sending.set()

    def chaos():
        t_start = time.time()
        names = ["w1", "w2", "w3"]
        k = 0
        broker_done = False
        while not done_sending.is_set() and not stop.is_set():
            time.sleep(a.kill_every)
            if done_sending.is_set():
                break
            el = time.time() - t_start
            if not broker_done and el > a.jobs / a.rate / 2:
                md = ad.list_topics(TOPIC, timeout=10)
                leader = md.topics[TOPIC].partitions[0].leader
                pid = int(open(os.path.join(a.kafka_run, f"node{leader}.pid")).read())
                os.kill(pid, signal.SIGKILL)
                faults.append(("broker", leader, time.time()))
                time.sleep(10)
                run(["bash", "scripts/kafka.sh", "start-node", str(leader)])
                broker_done = True
                continue
            name = names[k % 3]
            k += 1
            workers[name].kill()
            workers[name].wait()
            faults.append(("worker", name, time.time()))
            start_worker(name)

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": f"soak-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(reply, p, 0) for p in range(3)])
    ts_, tc = threading.Thread(target=sender), threading.Thread(target=chaos)
    t_begin = time.time()
    ts_.start()
    tc.start()
    wrong = 0
    deadline = None
    while True:
        m = c.poll(0.2)
        if m is not None and not m.error():
            v = m.value()
            if v[:8] == b"EESEAL1:":
                v = nacl.public.SealedBox(reply_sk).decrypt(v[8:])
            r = json.loads(v)
            if r.get("final"):
                with lock:
                    replies.setdefault(r["id"], []).append((time.time(), r))
                if r["status"] != "ok" and r["error"]["code"] not in ("expired",):
                    wrong += 1
        if done_sending.is_set() and deadline is None:
            deadline = time.time() + 240
        with lock:
            all_in = len(sent) == a.jobs and all(j in replies for j in sent)
        if all_in or (deadline and time.time() > deadline):
            break
    stop.set()
    tc.join()
    time.sleep(3)  # late duplicates
    while True:
        m = c.poll(0.5)
        if m is None:
            break
        if not m.error():
            v = m.value()
            if v[:8] == b"EESEAL1:":
                v = nacl.public.SealedBox(reply_sk).decrypt(v[8:])
            r = json.loads(v)
            if r.get("final"):
                replies.setdefault(r["id"], []).append((time.time(), r))
    c.close()
    for p in workers.values():
        p.send_signal(signal.SIGTERM)
    for p in workers.values():
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()

    lost = [j for j in sent if j not in replies]
    dups = sum(len(v) - 1 for v in replies.values())
    codes = {}
    for v in replies.values():
        r = v[0][1]
        k = "ok" if r["status"] == "ok" else r["error"]["code"]
        codes[k] = codes.get(k, 0) + 1
    lat = {j: (replies[j][0][0] - sent[j]) * 1000 for j in sent if j in replies}
    near = [l for j, l in lat.items() if any(0 <= sent[j] - f[2] <= 15 for f in faults)]
    recov = []
    for kind, who, t in faults:
        after = [replies[j][0][0] - t for j in sent if sent[j] > t and j in replies]
        recov.append({"fault": kind, "target": who, "seconds_to_first_answer_after":
                      round(min(after), 2) if after else None})
    res = {"jobs": a.jobs, "rate": a.rate, "answered": len(replies), "lost": len(lost),
           "duplicate_finals": dups, "outcomes": codes, "wrong": wrong,
           "seconds": round(time.time() - t_begin, 1),
           "latency_ms": {"p50": round(pct(lat.values(), 0.5)), "p99": round(pct(lat.values(), 0.99))},
           "latency_near_faults_ms": {"jobs": len(near), "p50": round(pct(near, 0.5)) if near else None,
                                      "p99": round(pct(near, 0.99)) if near else None},
           "faults": len(faults), "recovery": recov}
    print(json.dumps(res, indent=1))
    if a.json_out:
        json.dump(res, open(a.json_out, "w"), indent=1)
    ok = not lost and wrong == 0
    print(f"chaos: {1 if ok else 0} passed, {0 if ok else 1} failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
