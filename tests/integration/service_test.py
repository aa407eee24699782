#!/usr/bin/env python3
"""Integration tests of the eeinfer service on a real Apache Kafka 3.9.

Runs real ee-consumer workers (the product, C) against the broker started by
scripts/kafka.sh, and talks to them with clients nobody here wrote:
confluent-kafka (Python, its own bundled librdkafka) and kcat (Debian). The
oracle for every generated token is local encrypted generation with
`ee-model generate --model ENC --tokens ...` (the same encrypted model, no
Kafka), and the plaintext check decrypts with `ee-model detokenize --key`.

Usage: service_test.py --bin build/bin --model PLAIN.gguf --bootstrap HOST:PORT
                       --work DIR [--only NAME,...]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ARGS = None
KEY_ID = None
ENC = None
KEY = None
PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
    "Give me one tip for learning to cook.",
]
LONG_PROMPT = "Write a very long and detailed essay about the history of the Roman Empire."


# ---- helpers ------------------------------------------------------------------

def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def ee_model(*a):
    return run([os.path.join(ARGS.bin, "ee-model"), *a])


def encrypt_prompt(text):
    return json.loads(ee_model("tokenize", "--model", ARGS.model, "--key", KEY, "--chat",
                               "--prompt", text, "--json"))


def local_tokens(enc_ids, max_tokens, temperature=0.0, top_k=0, top_p=1.0, seed=0):
    """The oracle: the same encrypted model run locally, no Kafka."""
    out = ee_model("generate", "--model", ENC, "--tokens", ",".join(map(str, enc_ids)),
                   "--max-tokens", str(max_tokens), "--temperature", str(temperature),
                   "--top-k", str(top_k), "--top-p", str(top_p), "--seed", str(seed),
                   "--threads", "1", "--json")
    o = json.loads(out)
    return o["tokens"], o["finish_reason"]


def decrypt_text(enc_ids):
    if not enc_ids:
        return ""
    return ee_model("detokenize", "--model", ARGS.model, "--key", KEY, "--tokens",
                    ",".join(map(str, enc_ids)))


ADMIN = None


def admin():
    global ADMIN
    if ADMIN is None:  # one client: futures die with their handle
        ADMIN = AdminClient({"bootstrap.servers": ARGS.bootstrap})
    return ADMIN


def create_topic(name, partitions=1):
    fs = admin().create_topics([NewTopic(name, num_partitions=partitions,
                                         replication_factor=ARGS.nodes)])
    for f in fs.values():
        try:
            f.result(15)
        except Exception as e:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    # wait until the metadata has leaders
    deadline = time.time() + 15
    while time.time() < deadline:
        md = admin().list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name} has no leaders")


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


PRODUCER = None


def producer():
    global PRODUCER
    if PRODUCER is None:
        PRODUCER = Producer({"bootstrap.servers": ARGS.bootstrap, "enable.idempotence": True,
                             "linger.ms": 1})
    return PRODUCER


def produce(topic, value, key, headers=None):
    errs = []
    producer().produce(topic, value=value, key=key, headers=headers or [],
                       on_delivery=lambda e, m: errs.append(e) if e else None)
    producer().flush(15)
    if errs:
        raise AssertionError(f"produce to {topic}: {errs[0]}")


def request(id_, tokens, reply_to, model="smollm2", max_tokens=32, stream=False,
            deadline_ms=0, key_id=None, **params):
    p = {"max_tokens": max_tokens}
    p.update(params)
    r = {"v": 1, "id": id_, "model": model, "key_id": key_id or KEY_ID, "task": "generate",
         "input": {"tokens": tokens}, "params": p, "reply_to": reply_to, "stream": stream}
    if deadline_ms:
        r["deadline_ms"] = deadline_ms
    return r


def submit(req, topic="ee.requests.smollm2.small"):
    produce(topic, json.dumps(req).encode(), req["id"].encode(),
            [("ee-id", req["id"].encode()), ("ee-reply-to", req["reply_to"].encode())])


class Replies:
    """Reads a reply topic from the beginning; collects replies by id."""

    def __init__(self, topic):
        self.topic = topic
        self.c = Consumer({"bootstrap.servers": ARGS.bootstrap, "group.id": uniq("t"),
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        md = self.c.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions
        self.c.assign([TopicPartition(topic, p, 0) for p in parts])
        self.by_id = {}
        self.seen = set()  # (partition, offset): each record counted once
        self.last_new = time.time()

    def add(self, key, value, partition, offset):
        if (partition, offset) in self.seen:
            return
        self.seen.add((partition, offset))
        self.last_new = time.time()
        r = json.loads(value)
        assert key.decode() == r["id"], "reply key must be the request id"
        self.by_id.setdefault(r["id"], []).append(r)

    def poll(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            m = self.c.poll(0.2)
            if m is None or m.error():
                continue
            self.add(m.key(), m.value(), m.partition(), m.offset())

    def wait_final(self, ids, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if all(any(r["final"] for r in self.by_id.get(i, [])) for i in ids):
                return {i: [r for r in self.by_id[i] if r["final"]][0] for i in ids}
            self.poll(0.5)
            if time.time() - self.last_new > 8:
                # confluent-kafka (librdkafka 2.16) on a just-created topic of a
                # 3-broker cluster was seen to stall for minutes after assign;
                # read the topic again with a fresh client (records are
                # deduplicated by position, so nothing counts twice).
                for (k, v, _, p, o) in read_all(self.topic, 3):
                    self.add(k, v, p, o)
                self.last_new = time.time()
        missing = [i for i in ids if not any(r["final"] for r in self.by_id.get(i, []))]
        dl = [(h.get("ee-dlq-error-code"), h.get("ee-dlq-error-message"))
              for (_, v, h, _, _) in read_all("ee.dlq", 3) if any(m.encode() in (v or b"") for m in missing)]
        raise AssertionError(f"no final reply for {missing} within {timeout}s; partials: "
                             f"{ {i: len(self.by_id.get(i, [])) for i in missing} }; dead letters: {dl}")

    def close(self):
        self.c.close()


def read_all(topic, timeout=5):
    """Every record of a topic (key, value, headers dict)."""
    c = Consumer({"bootstrap.servers": ARGS.bootstrap, "group.id": uniq("r"),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions) if topic in md.topics else []
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    end = time.time() + timeout
    while time.time() < end:
        m = c.poll(0.3)
        if m is None or m.error():
            continue
        out.append((m.key(), m.value(), {k: v.decode() for k, v in (m.headers() or [])},
                    m.partition(), m.offset()))
    c.close()
    return out


def committed_equals_end(group, topic, timeout=15):
    """Every partition's committed offset reaches the high watermark."""
    c = Consumer({"bootstrap.servers": ARGS.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        end = time.time() + timeout
        last = None
        while time.time() < end:
            com = c.committed(parts, timeout=10)
            ok = True
            last = []
            for tp in com:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
                have = tp.offset if tp.offset >= 0 else 0
                last.append((tp.partition, have, hi))
                if hi > 0 and have != hi:
                    ok = False
            if ok:
                return last
            time.sleep(0.5)
        raise AssertionError(f"group {group} on {topic}: committed != end: {last}")
    finally:
        c.close()


# ---- workers --------------------------------------------------------------------

class Worker:
    def __init__(self, name, models=("smollm2",), classes="small", threads=1, extra=(),
                 grace_ms=20000, metrics_port=0, env=None):
        self.name = name
        self.log = os.path.join(ARGS.work, f"{name}-{uuid.uuid4().hex[:6]}.log")
        cmd = [ARGS.consumer or os.path.join(ARGS.bin, "ee-consumer"), "--bootstrap", ARGS.bootstrap,
               "--class", classes, "--threads", str(threads), "--name", name,
               "--metrics-port", str(metrics_port), "--grace-ms", str(grace_ms),
               "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500",
               "--kafka", "statistics.interval.ms=1000",
               "--set", f"topics.replication_factor={ARGS.nodes}", *extra]
        for m in models:
            cmd += ["--model", f"{m}={ENC}"]
        self.f = open(self.log, "w")
        self.p = subprocess.Popen(cmd, stdout=self.f, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})})

    def events(self):
        out = []
        with open(self.log) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
        return out

    def wait_event(self, event, timeout=30, pred=lambda e: True):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events():
                if e.get("event") == event and pred(e):
                    return e
            if self.p.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.p.returncode}: {self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no {event} within {timeout}s: {self.tail()}")

    def wait_assigned(self, timeout=40):
        return self.wait_event("partitions_assigned", timeout,
                               lambda e: len(e.get("partitions", [])) > 0)

    def tail(self, n=8):
        with open(self.log) as f:  # the worker's own events, not librdkafka's chatter
            return "".join([ln for ln in f.readlines() if '"event":"librdkafka"' not in ln][-n:])

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError(f"{self.name} did not exit within {timeout}s after {sig}")
        self.f.close()
        with open(self.log, errors="replace") as fh:
            text = fh.read()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in text:  # the ASan/UBSan worker (make test-integration-san)
                i = text.index(bad)
                raise AssertionError(f"{self.name}: {text[i:i + 1500]}")
        return self.p.returncode


def check_ok(r, want_tokens, worker=None):
    assert r["status"] == "ok", r
    assert r["final"] is True
    assert r["output"]["tokens"] == want_tokens, (r["output"]["tokens"], want_tokens)
    assert r["usage"]["completion_tokens"] == len(want_tokens)
    for k in ("queue_ms", "prefill_ms", "decode_ms"):
        assert r["timings"][k] >= 0
    if worker:
        assert r["worker"] == worker, r["worker"]


# ---- tests ---------------------------------------------------------------------

def test_end_to_end(ctx):
    """Kafka generation == local encrypted generation; decrypts to text."""
    w = ctx["w1"]
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    cases = []
    for i, text in enumerate(PROMPTS):
        ids = encrypt_prompt(text)
        params = {} if i % 2 == 0 else {"temperature": 0.8, "top_k": 40, "top_p": 0.95,
                                         "seed": 1234 + i}
        rid = uniq(f"e2e{i}")
        req = request(rid, ids, rt, max_tokens=40, **params)
        cases.append((rid, ids, params))
        submit(req)  # all at once: they share the worker's batch
    t0 = time.time()
    finals = rep.wait_final([c[0] for c in cases], 120)
    wall = time.time() - t0
    for rid, ids, params in cases:
        want, finish = local_tokens(ids, 40, params.get("temperature", 0.0),
                                    params.get("top_k", 0), params.get("top_p", 1.0),
                                    params.get("seed", 0))
        check_ok(finals[rid], want, w.name)
        assert finals[rid]["finish_reason"] == finish
        assert finals[rid]["usage"]["prompt_tokens"] == len(ids)
    text = decrypt_text(finals[cases[0][0]]["output"]["tokens"])
    assert "Paris" in text, text
    rep.close()
    return f"{len(cases)} jobs equal to local generation ({wall:.2f}s); first answer: {text.strip()!r}"


def test_streaming(ctx):
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    ids = encrypt_prompt(PROMPTS[2])
    rid = uniq("stream")
    submit(request(rid, ids, rt, max_tokens=24, stream=True))
    final = rep.wait_final([rid], 60)[rid]
    rep.poll(0.5)
    parts = sorted([r for r in rep.by_id[rid] if not r["final"]], key=lambda r: r["seq"])
    assert [r["seq"] for r in parts] == list(range(len(parts))), [r["seq"] for r in parts]
    assert final["seq"] == len(parts)
    streamed = [t for r in parts for t in r["output"]["tokens"]]
    assert streamed == final["output"]["tokens"]
    want, _ = local_tokens(ids, 24)
    check_ok(final, want)
    rep.close()
    return f"{len(parts)} partials then final seq {final['seq']}; tokens equal"


def test_bad_inputs(ctx):
    """Every bad-input kind: error reply or dead letter; worker keeps serving;
    offsets committed."""
    w = ctx["wbad"]
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    topic = "ee.requests.smollm2.small"
    good = encrypt_prompt(PROMPTS[0])
    expect_reply = {}  # id -> code
    dlq_values = {}    # raw value -> code
    n0 = len(read_all("ee.dlq", 2))

    def rq(**over):
        r = request(uniq("bad"), good, rt, max_tokens=8)
        r.update(over)
        return r

    # error replies (id and reply_to readable)
    r = rq(); r["params"]["max_tokens"] = "8"; expect_reply[r["id"]] = "bad_request"; submit(r)
    r = rq(); del r["task"]; expect_reply[r["id"]] = "bad_request"; submit(r)
    r = rq(v=2); expect_reply[r["id"]] = "unsupported_version"; submit(r)
    r = rq(model="other"); expect_reply[r["id"]] = "unknown_model"; submit(r)
    r = rq(task="rank"); expect_reply[r["id"]] = "unknown_task"; submit(r)
    r = rq(task="embed"); expect_reply[r["id"]] = "unsupported_task"; submit(r)  # a decoder
    r = rq(key_id="0" * 32); expect_reply[r["id"]] = "key_mismatch"; submit(r)
    r = rq(); r["input"]["tokens"] = good[:3] + [49152]; expect_reply[r["id"]] = "bad_token"; submit(r)
    r = rq(); r["input"]["tokens"] = (good * 20)[:300]; expect_reply[r["id"]] = "too_large"; submit(r)
    r = rq(); r["params"]["max_tokens"] = 100000; expect_reply[r["id"]] = "too_large"; submit(r)
    r = rq(); r["params"]["top_p"] = 2; expect_reply[r["id"]] = "bad_request"; submit(r)
    # dead letters (no usable id or reply_to, or an oversized record)
    raw = [
        (b"this is not json", "bad_request"),
        (b"", "bad_request"),
        (b'["an array"]', "bad_request"),
        (json.dumps({k: v for k, v in rq().items() if k != "reply_to"}).encode(), "bad_request"),
        (json.dumps(rq(reply_to="bad topic!")).encode(), "bad_request"),
        (json.dumps(rq(id="")).encode(), "bad_request"),
        (b"{" + b" " * 70000 + b"}", "too_large"),
    ]
    for i, (v, code) in enumerate(raw):
        produce(topic, v, f"raw-{i}".encode())
        dlq_values[v] = code
    # a valid reply_to that does not exist: the reply fails, the request is dead-lettered
    missing = rq(reply_to=uniq("no-such-topic"))
    submit(missing)
    # and the worker still serves a good job afterwards
    okid = uniq("after-bad")
    submit(request(okid, good, rt, max_tokens=8))

    finals = rep.wait_final(list(expect_reply) + [okid], 60)
    for rid, code in expect_reply.items():
        f = finals[rid]
        assert f["status"] == "error" and f["error"]["code"] == code, (code, f)
        assert f["error"]["message"], f
    want, _ = local_tokens(good, 8)
    check_ok(finals[okid], want, w.name)
    # dead letters: original bytes + headers
    end = time.time() + 30
    dl = []
    while time.time() < end:
        dl = read_all("ee.dlq", 2)[n0:]
        if len(dl) >= len(raw) + 1:
            break
    by_value = {v: h for (_, v, h, _, _) in dl}
    for v, code in dlq_values.items():
        assert (v if v else None) in by_value or v in by_value, f"no dead letter for {v[:40]!r}"
        h = by_value.get(v if v else None) or by_value.get(v)
        assert h["ee-dlq-topic"] == topic and h["ee-dlq-error-code"] == code, h
        assert h["ee-dlq-group"] == "ee-workers.smollm2.small"
        assert int(h["ee-dlq-offset"]) >= 0 and int(h["ee-dlq-partition"]) >= 0
        assert h["ee-dlq-error-message"]
    mv = json.dumps(missing).encode()
    assert mv in by_value, "the request whose reply topic is missing was not dead-lettered"
    assert "reply to" in by_value[mv]["ee-dlq-error-message"], by_value[mv]
    # offsets committed up to the end
    com = committed_equals_end("ee-workers.smollm2.small", topic)
    # metrics count them
    body = urllib.request.urlopen(f"http://127.0.0.1:{ctx['bad_port']}/metrics", timeout=5).read().decode()
    assert re.search(r'ee_job_errors_total\{code="bad_token",model="smollm2"\} [1-9]', body), body[:2000]
    assert re.search(r'ee_dead_letters_total\{code="too_large"\} [1-9]', body)
    assert w.p.poll() is None, "worker died"
    rep.close()
    return (f"{len(expect_reply)} error replies, {len(raw) + 1} dead letters, worker still "
            f"serving; committed==end {com}")


def test_deadlines(ctx):
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    ids = encrypt_prompt(LONG_PROMPT)
    past = uniq("past")
    submit(request(past, ids, rt, max_tokens=8, deadline_ms=int(time.time() * 1000) - 1000))
    mid = uniq("mid")
    submit(request(mid, ids, rt, max_tokens=500, deadline_ms=int(time.time() * 1000) + 1000))
    f = rep.wait_final([past, mid], 60)
    assert f[past]["status"] == "error" and f[past]["error"]["code"] == "expired", f[past]
    assert f[mid]["status"] == "error" and f[mid]["error"]["code"] == "expired", f[mid]
    assert "during generation" in f[mid]["error"]["message"], f[mid]
    ev = ctx["w1"].events()
    started = [e for e in ev if e.get("event") == "job_started" and e.get("id") == past]
    assert not started, "an expired job must not run"
    rep.close()
    return f"expired before start: no inference; mid-generation: {f[mid]['error']['message']!r}"


def test_two_workers_share(ctx):
    w1, w2 = ctx["w1"], ctx["w2"]
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    ids = encrypt_prompt(PROMPTS[1])
    want, _ = local_tokens(ids, 12)
    jobs = [uniq(f"share{i}") for i in range(16)]
    for j in jobs:
        submit(request(j, ids, rt, max_tokens=12))
    finals = rep.wait_final(jobs, 120)
    rep.poll(2)
    workers = {}
    for j in jobs:
        finals_j = [r for r in rep.by_id[j] if r["final"]]
        assert len(finals_j) == 1, f"{j}: {len(finals_j)} final replies"
        check_ok(finals_j[0], want)
        workers[finals_j[0]["worker"]] = workers.get(finals_j[0]["worker"], 0) + 1
    assert set(workers) == {w1.name, w2.name}, workers
    rep.close()
    return f"16 jobs, one final reply each, served by {workers}"


def test_backpressure(ctx):
    """max_inflight 2: the worker pauses its partitions, every job still gets
    its reply, and the lag metric returns to 0 once all is committed."""
    port = 19000 + os.getpid() % 400
    # its own model name, hence its own topic: no other worker answers
    w = Worker("wbp", models=("bpmodel",), extra=["--max-inflight", "2", "--max-batch", "1"],
               metrics_port=port)
    try:
        w.wait_assigned(60)
        rt = uniq("replies")
        create_topic(rt)
        rep = Replies(rt)
        ids = encrypt_prompt(PROMPTS[1])
        want, _ = local_tokens(ids, 8)
        jobs = [uniq(f"bp{i}") for i in range(8)]
        for j in jobs:
            submit(request(j, ids, rt, model="bpmodel", max_tokens=8), "ee.requests.bpmodel.small")
        finals = rep.wait_final(jobs, 90)
        for j in jobs:
            check_ok(finals[j], want, "wbp")
        rep.close()

        def metric(name):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return body, [ln for ln in body.splitlines() if ln.startswith(name)]
        body, pauses = metric("ee_intake_pauses_total")
        n = float(pauses[0].split()[-1]) if pauses else 0
        assert n >= 1, "never paused: " + body[:1500]
        # lag per partition from librdkafka statistics (1 s here) reaches 0
        end = time.time() + 20
        lag = []
        while time.time() < end:
            _, lag = metric("kafka_consumergroup_lag{")
            if lag and all(float(x.split()[-1]) == 0 for x in lag):
                break
            time.sleep(0.5)
        assert lag and all(float(x.split()[-1]) == 0 for x in lag), lag
        _, health = None, urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
        assert health == b"ok\n", health
        # A rebalance while intake is paused: a second worker joins while the
        # first holds max_inflight jobs. Partitions must not come back paused
        # (librdkafka keeps a partition's pause flag across unassign/assign).
        more = [uniq(f"bpr{i}") for i in range(12)]
        long_ids = encrypt_prompt(LONG_PROMPT)
        want_long, _ = local_tokens(long_ids, 60)
        for j in more[:6]:  # ~1 s each: the first worker stays paused a while
            submit(request(j, long_ids, rt, model="bpmodel", max_tokens=60),
                   "ee.requests.bpmodel.small")
        w2 = Worker("wbp2", models=("bpmodel",), extra=["--max-inflight", "2", "--max-batch", "1"])
        try:
            w2.wait_assigned(60)
            w.wait_event("partitions_assigned", 30, lambda e: e["ts"] > w2.events()[0]["ts"])
            for j in more[6:]:
                submit(request(j, ids, rt, model="bpmodel", max_tokens=8), "ee.requests.bpmodel.small")
            rep2 = Replies(rt)
            finals2 = rep2.wait_final(more, 90)
            rep2.close()
            served = {}
            for k, j in enumerate(more):
                check_ok(finals2[j], want_long if k < 6 else want)
                served[finals2[j]["worker"]] = served.get(finals2[j]["worker"], 0) + 1
            late = {finals2[j]["worker"] for j in more[6:]}
        finally:
            w2.stop()
    finally:
        w.stop()
    return (f"8 jobs through max_inflight 2: paused {n:.0f} times, all answered; lag {len(lag)} "
            f"partitions at 0; rebalance while paused: 12 more answered {served}, after it by {sorted(late)}")


def test_producer_fatal_recovered(ctx):
    """A fatal error of the idempotent reply producer (injected with
    librdkafka's rd_kafka_test_fatal_error after 3 replies): the worker
    replaces its producer, re-sends what was pending, keeps serving; every
    job answered, offsets committed."""
    w = Worker("wfatal", models=("fatalmodel",), extra=["--max-batch", "4"],
               env={"EE_TEST_FATAL_AFTER": "3"})
    try:
        w.wait_assigned(60)
        rt = uniq("replies")
        create_topic(rt)
        rep = Replies(rt)
        ids = encrypt_prompt(PROMPTS[4])
        want, _ = local_tokens(ids, 16)
        jobs = [uniq(f"fatal{i}") for i in range(10)]
        for j in jobs:
            submit(request(j, ids, rt, model="fatalmodel", max_tokens=16),
                   "ee.requests.fatalmodel.small")
        finals = rep.wait_final(jobs, 90)
        for j in jobs:
            check_ok(finals[j], want, "wfatal")
        w.wait_event("producer_recreated", 10)
        assert w.p.poll() is None, "worker exited after the fatal error"
        com = committed_equals_end("ee-workers.fatalmodel.small", "ee.requests.fatalmodel.small")
        rep.poll(1)
        dup = sum(1 for j in jobs if len([r for r in rep.by_id[j] if r["final"]]) > 1)
        rep.close()
    finally:
        rc = w.stop()
    assert rc == 0, rc
    return f"fatal producer error after 3 replies: producer replaced, 10/10 answered ({dup} duplicate finals), committed==end {com}, exit 0"


def test_broker_failover(ctx):
    """3 brokers, replication 3, min.insync.replicas 2: SIGKILL the broker
    leading a request partition while jobs run; every job is still answered
    and the worker keeps serving (at-least-once: duplicates allowed)."""
    if ARGS.nodes < 3:
        raise AssertionError("needs --nodes 3")
    rt = uniq("replies")
    create_topic(rt, 2)
    rep = Replies(rt)
    ids = encrypt_prompt(PROMPTS[3])
    want, _ = local_tokens(ids, 12)
    jobs = [uniq(f"fo{i}") for i in range(30)]
    for j in jobs[:10]:
        submit(request(j, ids, rt, max_tokens=12))
    rep.wait_final(jobs[:3], 60)
    md = admin().list_topics("ee.requests.smollm2.small", timeout=10)
    leader = md.topics["ee.requests.smollm2.small"].partitions[0].leader
    with open(os.path.join(ARGS.kafka_run, f"node{leader}.pid")) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    t_kill = time.time()
    for j in jobs[10:]:
        submit(request(j, ids, rt, max_tokens=12))
    finals = rep.wait_final(jobs, 180)
    took = time.time() - t_kill
    for j in jobs:
        check_ok(finals[j], want)
    assert ctx["w1"].p.poll() is None, "worker died"
    rep.poll(1)
    dup = sum(1 for j in jobs if len([r for r in rep.by_id[j] if r["final"]]) > 1)
    rep.close()
    return (f"killed broker {leader} (leader of partition 0) mid-run: 30/30 jobs answered "
            f"({dup} duplicate finals), last one {took:.1f}s after the kill")


def find_runner(workers, rid, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        for w in workers:
            if any(e.get("event") == "job_started" and e.get("id") == rid for e in w.events()):
                return w
        time.sleep(0.05)
    raise AssertionError(f"nobody started {rid}")


def long_job_on_one(ctx, sig, grace_ms):
    w1, w2 = ctx["w1"], ctx["w2"]
    rt = uniq("replies")
    create_topic(rt)
    rep = Replies(rt)
    ids = encrypt_prompt(LONG_PROMPT)
    rid = uniq("long")
    want, _ = local_tokens(ids, 400)
    submit(request(rid, ids, rt, max_tokens=400))
    runner = find_runner([w1, w2], rid)
    other = w2 if runner is w1 else w1
    time.sleep(0.3)  # mid-job
    t0 = time.time()
    rc = runner.stop(sig)
    final = rep.wait_final([rid], 90)[rid]
    took = time.time() - t0
    rep.poll(2)
    finals = [r for r in rep.by_id[rid] if r["final"]]
    assert len(finals) == 1, f"{len(finals)} final replies"
    check_ok(final, want, other.name)
    rep.close()
    return runner, other, rc, took


def test_sigterm_redelivers(ctx):
    runner, other, rc, took = long_job_on_one(ctx, signal.SIGTERM, 500)
    assert rc == 0, f"exit status {rc} after SIGTERM"
    ev = runner.events()
    assert any(e.get("event") == "job_abandoned" for e in ev), runner.tail()
    assert any(e.get("event") == "shutdown_done" for e in ev)
    # replace the stopped worker for the next test
    name = runner.name
    ctx["w1" if runner is ctx["w1"] else "w2"] = nw = Worker(name + "b", grace_ms=500)
    nw.wait_event("ready", 60)
    time.sleep(1)
    return (f"{runner.name} exited 0 after SIGTERM mid-job (abandoned it); {other.name} "
            f"answered it once, {took:.1f}s after the signal")


def test_sigkill_loses_nothing(ctx):
    runner, other, rc, took = long_job_on_one(ctx, signal.SIGKILL, 500)
    return (f"{runner.name} SIGKILLed mid-job; {other.name} answered it once, {took:.1f}s "
            f"later (session.timeout.ms=6000)")


def test_routing(ctx):
    """Two models x two classes: each job reaches only its worker."""
    wa = Worker("route-a", models=("smollm2",), classes="large")
    wb = Worker("route-b", models=("smollm2x",), classes="small,large")
    try:
        wa.wait_assigned(60)
        wb.wait_event("ready", 60)
        wb.wait_assigned(60)
        rt = uniq("replies")
        create_topic(rt)
        rep = Replies(rt)
        ids = encrypt_prompt(PROMPTS[3])
        want, _ = local_tokens(ids, 8)
        a = uniq("route-a")
        b1 = uniq("route-b1")
        b2 = uniq("route-b2")
        submit(request(a, ids, rt, max_tokens=8), "ee.requests.smollm2.large")
        submit(request(b1, ids, rt, model="smollm2x", max_tokens=8), "ee.requests.smollm2x.small")
        submit(request(b2, ids, rt, model="smollm2x", max_tokens=8), "ee.requests.smollm2x.large")
        f = rep.wait_final([a, b1, b2], 60)
        check_ok(f[a], want, "route-a")
        check_ok(f[b1], want, "route-b")
        check_ok(f[b2], want, "route-b")
        for w, mine in ((wa, {a}), (wb, {b1, b2})):
            seen = {e.get("id") for e in w.events() if e.get("event") == "job_started"}
            assert seen == mine, (w.name, seen, mine)
        # the small-class worker of smollm2 (w1/w2) did not see these either
        for w in (ctx["w1"], ctx["w2"]):
            seen = {e.get("id") for e in w.events() if e.get("event") == "job_started"}
            assert not (seen & {a, b1, b2}), (w.name, seen & {a, b1, b2})
        rep.close()
    finally:
        wa.stop()
        wb.stop()
    return "smollm2/large -> route-a; smollm2x/small and /large -> route-b; no one else"


def test_kcat_interop(ctx):
    """A request typed by hand per docs/PROTOCOL.md, produced and read with kcat."""
    rt = uniq("replies-kcat")
    create_topic(rt)
    ids = encrypt_prompt(PROMPTS[0])
    rid = uniq("kcat")
    line = ('{"v":1,"id":"%s","model":"smollm2","key_id":"%s","task":"generate",'
            '"input":{"tokens":%s},"params":{"max_tokens":16},"reply_to":"%s"}'
            % (rid, KEY_ID, json.dumps(ids), rt))
    subprocess.run(["kcat", "-P", "-b", ARGS.bootstrap, "-t", "ee.requests.smollm2.small",
                    "-k", rid, "-H", f"ee-id={rid}", "-H", f"ee-reply-to={rt}"],
                   input=line + "\n", text=True, check=True, timeout=30)
    end = time.time() + 60
    got = None
    while time.time() < end and not got:
        out = subprocess.run(["kcat", "-C", "-b", ARGS.bootstrap, "-t", rt, "-e", "-q",
                              "-f", "%k\t%s\n"], capture_output=True, text=True, timeout=30).stdout
        for ln in out.splitlines():
            k, _, v = ln.partition("\t")
            if k == rid:
                got = json.loads(v)
        time.sleep(0.5)
    assert got, "no reply read by kcat"
    want, _ = local_tokens(ids, 16)
    check_ok(got, want)
    return f"kcat request -> kcat reply: {decrypt_text(got['output']['tokens']).strip()!r}"


def test_producer_cli(ctx):
    """ee-producer submit --wait: encrypts, submits, decrypts = local client."""
    prod = os.path.join(ARGS.bin, "ee-producer")
    if not os.path.exists(prod):
        raise AssertionError("build/bin/ee-producer missing")
    rt = uniq("replies-prod")
    r = subprocess.run([prod, "submit", "--bootstrap", ARGS.bootstrap, "--model", "smollm2",
                        "--key", KEY, "--plain-model", ARGS.model, "--chat",
                        "--prompt", PROMPTS[0], "--max-tokens", "24", "--reply-to", rt,
                        "--wait", "--json", "--timeout-ms", "60000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip().startswith("{")]
    res = [x for x in lines if "status" in x]
    assert res and res[-1]["status"] == "ok", r.stdout
    local = json.loads(ee_model("generate", "--model", ENC, "--key", KEY, "--plain-model",
                                ARGS.model, "--chat", "--prompt", PROMPTS[0], "--max-tokens",
                                "24", "--threads", "1", "--json"))
    assert res[-1]["text"] == local["text"], (res[-1]["text"], local["text"])
    return f"ee-producer --wait text == local client text: {local['text']!r}"


def test_load_report(ctx):
    """ee-producer load --records/--report: one record per job with monotone
    times and the worker's name, the plots and a summary that agrees; the open
    loop measures latency from the intended send (start + i/rate)."""
    prod = os.path.join(ARGS.bin, "ee-producer")
    base = [prod, "load", "--bootstrap", ARGS.bootstrap, "--model", "smollm2", "--key", KEY,
            "--plain-model", ARGS.model, "--chat", "--max-tokens", "8",
            "--reply-to", uniq("replies-load"), "--timeout-ms", "60000"]
    env = {**os.environ, "EE_PYTHON": sys.executable}
    rep = os.path.join(ARGS.work, "load-report")
    rec = os.path.join(ARGS.work, "load-records.jsonl")
    pf = os.path.join(ARGS.work, "load-prompts.txt")
    with open(pf, "w") as fh:
        fh.write("\n".join(PROMPTS[:3]) + "\n")
    r = subprocess.run(base + ["--prompts-file", pf, "--count", "6", "--concurrency", "2",
                               "--stream", "--records", rec, "--report", rep, "--json"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr, f"progress line drawn on a pipe: {r.stderr!r}"
    lines = [json.loads(x) for x in open(rec)]
    head, jobs = lines[0], lines[1:]
    assert head["record"] == "run" and head["loop"] == "closed" and head["count"] == 6, head
    assert head["latency_from"] == "actual_send" and head["start_epoch_ms"] > 1.7e12, head
    assert len(jobs) == 6 and len({j["id"] for j in jobs}) == 6, jobs
    for j in jobs:
        assert j["record"] == "job" and j["status"] == "ok", j
        t = [j["intended_ms"], j["sent_ms"], j["first_token_ms"], j["final_ms"]]
        assert None not in t and 0 <= t[0] <= t[1] <= t[2] <= t[3], j
        assert j["worker"] == "w1", j
        assert j["completion_tokens"] >= 1 and j["prompt_tokens"] >= 1, j
        assert abs(j["latency_ms"] - (j["final_ms"] - j["sent_ms"])) < 0.01, j
        assert j["decode_ms"] is not None and j["queue_ms"] is not None, j
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    with open(os.path.join(rep, "summary.json")) as fh:
        assert json.load(fh) == summary
    assert summary["jobs"] == {"total": 6, "ok": 6, "error": 0, "timeout": 0, "unsent": 0}, summary
    assert summary["workers"] == {"w1": 6}, summary
    assert summary["generated_tokens"] == sum(j["completion_tokens"] for j in jobs), summary
    assert summary["first_token_ms"]["n"] == 6, summary
    for png in ("latency.png", "latency_cdf.png", "throughput.png", "workers.png"):
        with open(os.path.join(rep, png), "rb") as fh:
            data = fh.read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, (png, len(data))
    with open(os.path.join(rep, "index.md")) as fh:
        assert "![latency over time](latency.png)" in fh.read()
    # open loop: 3 jobs at 20/s, latency from the intended send
    rec2 = os.path.join(ARGS.work, "load-records-open.jsonl")
    r = subprocess.run(base + ["--prompt", PROMPTS[1], "--count", "3", "--rate", "20",
                               "--records", rec2], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "from the intended send" in r.stdout and "service ms" in r.stdout, r.stdout
    lines = [json.loads(x) for x in open(rec2)]
    assert lines[0]["loop"] == "open" and lines[0]["latency_from"] == "intended_send", lines[0]
    for j in lines[1:]:
        assert abs(j["intended_ms"] - 50.0 * j["index"]) < 0.01, j
        assert j["intended_ms"] <= j["sent_ms"] <= j["final_ms"], j
        assert abs(j["latency_ms"] - (j["final_ms"] - j["intended_ms"])) < 0.01, j
        assert abs(j["service_ms"] - (j["final_ms"] - j["sent_ms"])) < 0.01, j
    return (f"6 records ok on w1, p50 {summary['latency_ms']['p50']:.0f} ms, first token p50 "
            f"{summary['first_token_ms']['p50']:.0f} ms, 4 plots; open loop from intended send")


TESTS = [test_end_to_end, test_streaming, test_kcat_interop, test_producer_cli, test_load_report,
         test_deadlines,
         test_backpressure, test_producer_fatal_recovered, test_bad_inputs,
         test_two_workers_share, test_routing, test_sigterm_redelivers,
         test_sigkill_loses_nothing, test_broker_failover]
# run by tests/integration/service_3node.sh (a 3-broker cluster), not by default
THREE_NODE_ONLY = {"broker_failover"}


def main():
    global ARGS, KEY_ID, ENC, KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cache", required=True, help="key + encrypted model (reused)")
    ap.add_argument("--only", default="")
    ap.add_argument("--nodes", type=int, default=1, help="brokers in the cluster (replication)")
    ap.add_argument("--kafka-run", default=".cache/kafka/run", help="pid files of scripts/kafka.sh")
    ap.add_argument("--consumer", default=os.environ.get("EE_CONSUMER", ""),
                    help="worker binary (default BIN/ee-consumer; e.g. the ASan build)")
    ARGS = ap.parse_args()
    os.makedirs(ARGS.cache, exist_ok=True)
    KEY = os.path.join(ARGS.cache, "itest.eekey")
    ENC = os.path.join(ARGS.cache, "itest.enc.gguf")
    if not os.path.exists(KEY):
        ee_model("keygen", "--out", KEY)
    info = json.loads(ee_model("info", "--model", ENC, "--json")) if os.path.exists(ENC) else {}
    if not info.get("encrypted"):
        ee_model("encrypt", "--model", ARGS.model, "--key", KEY, "--out", ENC)
    KEY_ID = json.loads(ee_model("info", "--model", ENC, "--json"))["key_id"]
    for t in ("ee.requests.smollm2.small",):
        create_topic(t, 4)

    only = set(filter(None, ARGS.only.split(",")))
    ctx = {}
    failures = 0
    workers = []
    try:
        ctx["w1"] = Worker("w1", grace_ms=500)
        workers.append(ctx["w1"])
        ctx["w1"].wait_assigned(60)
        for t in TESTS:
            name = t.__name__[5:]
            if (only and name not in only) or (not only and name in THREE_NODE_ONLY):
                continue
            if name == "bad_inputs":
                ctx["bad_port"] = 19464 + os.getpid() % 500
                wb = Worker("wbad", extra=["--set", "limits.max_prompt_tokens=256",
                                           "--set", "limits.max_new_tokens=512",
                                           "--set", "limits.max_request_bytes=65536",
                                           "--group", "ee-workers.smollm2.small"],
                            metrics_port=ctx["bad_port"])
                ctx["wbad"] = wb
                # w1 leaves so that every bad record reaches the limited worker
                ctx["w1"].stop()
                wb.wait_assigned(60)
            if name == "two_workers_share":
                for w in ("wbad", "w1"):
                    if w in ctx:
                        ctx[w].stop()
                        del ctx[w]
                ctx["w1"] = Worker("w1", grace_ms=500)
                ctx["w2"] = Worker("w2", grace_ms=500)
                workers += [ctx["w1"], ctx["w2"]]
                ctx["w1"].wait_assigned(60)
                ctx["w2"].wait_assigned(60)
                time.sleep(1)
            t0 = time.time()
            try:
                msg = t(ctx)
                print(f"  PASS {name} ({time.time() - t0:.1f}s): {msg}", flush=True)
            except Exception as e:  # noqa: BLE001
                failures += 1
                print(f"  FAIL {name} ({time.time() - t0:.1f}s): {e}", flush=True)
                traceback.print_exc()
                keep = os.path.join(ARGS.cache, "failed-logs")
                os.makedirs(keep, exist_ok=True)
                for w in ("w1", "w2", "wbad"):
                    if w in ctx:
                        print(f"--- {ctx[w].name} log tail:\n{ctx[w].tail(15)}", flush=True)
                        subprocess.run(["cp", ctx[w].log, keep])
                print(f"--- worker logs kept in {keep}", flush=True)
            for w in ("w1", "w2", "wbad"):
                if w in ctx and w not in workers:
                    workers.append(ctx[w])
    finally:
        for w in list(ctx.values()):
            if isinstance(w, Worker):
                try:
                    w.stop(timeout=30)
                except AssertionError as e:
                    print(f"  stop: {e}")
    print(f"service_test: {'FAILED' if failures else 'ok'} ({failures} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
