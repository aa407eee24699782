"""Helpers shared by the integration tests: running a command, topics
(create, read whole, collect replies by id), a worker process and its
JSON log, the cached key + encrypted model, and the request-signature
digest rebuilt independently of the C code (docs/PROTOCOL.md,
"Signatures")."""
import hashlib
import json
import os
import struct
import subprocess
import time
import uuid


def run(cmd, timeout=600):
    """stdout of cmd; AssertionError naming the command and its stderr."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])} ... failed ({r.returncode}): {r.stderr.strip()[-1500:]}")
    return r.stdout


def create_topic(bootstrap, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        try:
            f.result(15)
        except Exception as e:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


def read_topic(bootstrap, topic, timeout=20):
    """Every record value of every partition, from the start to the end."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    vals, eof = [], set()
    end = time.time() + timeout
    while time.time() < end and len(eof) < len(parts):
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            eof.add(m.partition())
            continue
        vals.append(m.value() or b"")
    c.close()
    return vals


def collect_replies(bootstrap, topic, ids, timeout=90):
    """The first reply of each id in ids from partition 0 of topic (a dict
    by id; ids without a reply are missing from it)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    want, got = set(ids), {}
    end = time.time() + timeout
    while time.time() < end and not want <= set(got):
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        r = json.loads(m.value())
        got.setdefault(r["id"], r)
    c.close()
    return got


class Worker:
    """An ee-consumer with its JSON log in work/NAME.log."""

    def __init__(self, bin_dir, bootstrap, work, name, models, extra=(), threads=2):
        self.log = os.path.join(work, f"{name}.log")
        cmd = [os.path.join(bin_dir, "ee-consumer"), "--bootstrap", bootstrap, "--name", name,
               "--class", "small", "--threads", str(threads), "--grace-ms", "500",
               "--metrics-port", "0", "--kafka", "session.timeout.ms=6000", *extra]
        for m in models:
            cmd += ["--model", m]
        self.p = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def events(self):
        out = []
        for ln in open(self.log):
            if ln.startswith("{"):
                try:
                    out.append(json.loads(ln))
                except json.JSONDecodeError:
                    pass
        return out

    def wait(self, event, timeout=120, pred=lambda e: True):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events():
                if e.get("event") == event and pred(e):
                    return e
            if self.p.poll() is not None:
                raise AssertionError(f"worker exited {self.p.returncode}: {self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"no {event} in {timeout}s: {self.tail()}")

    def wait_assigned(self, min_partitions=1, timeout=120):
        return self.wait("partitions_assigned", timeout,
                         lambda e: len(e.get("partitions", [])) >= min_partitions)

    def tail(self, n=12):
        return "".join([ln for ln in open(self.log) if '"librdkafka"' not in ln][-n:])

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()


def ensure_encrypted(run, ee_model, model, cache):
    """Key and current-scheme encrypted model under cache (made once);
    returns (key path, encrypted path, key id)."""
    key, enc = os.path.join(cache, "itest.eekey"), os.path.join(cache, "itest.enc.gguf")
    os.makedirs(cache, exist_ok=True)
    if not os.path.exists(key):
        run([ee_model, "keygen", "--out", key])
    info = json.loads(run([ee_model, "info", "--model", enc, "--json"])) if os.path.exists(enc) else {}
    if info.get("scheme_status") != "current":
        if os.path.exists(enc):
            os.remove(enc)
        run([ee_model, "encrypt", "--model", model, "--key", key, "--out", enc])
    return key, enc, json.loads(run([ee_model, "info", "--model", enc, "--json"]))["key_id"]


def request_digest(topic, id_, reply_to, tenant, ts, deadline, value):
    h = hashlib.blake2b(digest_size=64)
    h.update(b"eeinfer.request-signature.v1\0")
    for s in (topic, id_, reply_to, tenant):
        s = s.encode()
        h.update(struct.pack("<Q", len(s)))
        h.update(s)
    h.update(struct.pack("<qq", ts, deadline))
    h.update(struct.pack("<Q", len(value)))
    h.update(value)
    return h.digest()
