"""Blind retrieval and RAG over Kafka (tests/integration/rag.sh).

Cases:
  index_and_search  ee-producer index puts tests/data/rag_corpus.jsonl (78
                    documents) into the blind index "pydoc" while the worker
                    runs (it follows the compacted topic); then each query
                    of tests/data/rag_queries.txt goes as a search job with
                    encrypted ids. Blind top-5 ids must equal exact
                    plaintext top-5 (numpy over ee-model embed on the
                    plaintext model) and scores agree within 1e-5.
  nothing_readable  the index topic and the request topic hold no document
                    or query text (sealed documents, encrypted ids/vectors).
  restart_reloads   a second worker started afterwards loads the index from
                    the topic and answers the same top-k.
  ask               ee-producer ask answers a question; the same pipeline
                    without encryption (plaintext retrieval, the same
                    prompt, ee-model generate on the plaintext SmolLM2)
                    gives the same prompt and the same answer.
"""
import argparse
import json
import os
import sys
import time
import uuid

import numpy as np
from confluent_kafka import Producer

from itest_common import Worker, collect_replies, run
from itest_common import read_topic as common_read_topic

ARGS = None
K = 5


def ee_model(*a):
    return run([os.path.join(ARGS.bin, "ee-model"), *a])


def plain_embed(text):
    return np.array(json.loads(ee_model("embed", "--model", ARGS.encoder, "--text", text,
                                        "--json", "--threads", "1"))["embedding"])


def enc_ids(text, key, enc):
    o = json.loads(ee_model("embed", "--model", enc, "--key", key, "--plain-model", ARGS.encoder,
                            "--text", text, "--show-ciphertext", "--json", "--threads", "1"))
    return o["encrypted_tokens"]


def worker(name, models, index):
    return Worker(ARGS.bin, ARGS.bootstrap, ARGS.work, name, models, ["--index", index])


IDX = "pydoc"


def search(ids_list, key_id, reply_topic, vectors=None):
    """Search jobs through a raw confluent-kafka client; replies by id."""
    p = Producer({"bootstrap.servers": ARGS.bootstrap})
    want = []
    for i, ids in enumerate(ids_list):
        rid = f"q-{uuid.uuid4().hex[:8]}-{i}"
        inp = {"tokens": ids} if vectors is None else {"embedding": vectors[i]}
        req = {"v": 1, "id": rid, "reply_to": reply_topic, "model": "minilm", "task": "search",
               "key_id": key_id, "input": inp, "search": {"index": IDX, "k": K}}
        p.produce("ee.requests.minilm.small", json.dumps(req).encode(), key=rid.encode())
        want.append(rid)
    p.flush(15)
    got = collect_replies(ARGS.bootstrap, reply_topic, want)
    missing = [w for w in want if w not in got]
    assert not missing, f"no reply for {len(missing)} search jobs"
    return [got[w] for w in want]


def read_topic(topic):
    return common_read_topic(ARGS.bootstrap, topic)


def main():
    global ARGS, IDX
    ap = argparse.ArgumentParser()
    for a in ("--bin", "--encoder", "--llm", "--bootstrap", "--work", "--cache"):
        ap.add_argument(a, required=True)
    ARGS = ap.parse_args()
    os.makedirs(ARGS.cache, exist_ok=True)
    key = os.path.join(ARGS.cache, "rag.eekey")
    enc_e, enc_l = os.path.join(ARGS.cache, "rag-minilm.enc.gguf"), os.path.join(ARGS.cache, "rag-smollm2.enc.gguf")
    if not os.path.exists(key):
        ee_model("keygen", "--out", key)
    for plain, enc in ((ARGS.encoder, enc_e), (ARGS.llm, enc_l)):
        info = json.loads(ee_model("info", "--model", enc, "--json")) if os.path.exists(enc) else {}
        if info.get("scheme_status") != "current":
            ee_model("encrypt", "--model", plain, "--key", key, "--out", enc)
    key_id = json.loads(ee_model("info", "--model", enc_e, "--json"))["key_id"]
    corpus = [json.loads(x) for x in open("tests/data/rag_corpus.jsonl")]
    queries = [q.strip() for q in open("tests/data/rag_queries.txt") if q.strip()]
    idx_name = f"pydoc-{uuid.uuid4().hex[:6]}"  # a new index per run: the cluster may keep old ones
    IDX = idx_name
    failures = 0
    workers = []

    def case(name, fn):
        nonlocal failures
        t0 = time.time()
        try:
            msg = fn()
            print(f"  PASS {name} ({time.time() - t0:.1f}s): {msg}", flush=True)
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"  FAIL {name} ({time.time() - t0:.1f}s): {e}", flush=True)
            for w in workers:
                print("--- worker log tail:\n" + w.tail(), flush=True)

    w1 = worker("wrag", [f"minilm={enc_e}", f"smollm2={enc_l}"], f"{idx_name}=minilm:flat")
    workers.append(w1)
    w1.wait("index_loaded")
    w1.wait("partitions_assigned", pred=lambda e: len(e.get("partitions", [])) > 0)

    prod = os.path.join(ARGS.bin, "ee-producer")
    plain_docs = np.stack([plain_embed(d["text"]) for d in corpus])
    rt = f"replies-rag-{uuid.uuid4().hex[:8]}"
    run([prod, "submit", "--bootstrap", ARGS.bootstrap, "--model", "minilm", "--task", "embed",
         "--key", key, "--plain-model", ARGS.encoder, "--prompt", "warm up", "--reply-to", rt,
         "--wait", "--timeout-ms", "60000"])
    state = {}

    def index_and_search():
        out = run([prod, "index", "--bootstrap", ARGS.bootstrap, "--model", "minilm", "--index",
                   idx_name, "--key", key, "--plain-model", ARGS.encoder, "--docs",
                   "tests/data/rag_corpus.jsonl", "--reply-to", rt, "--timeout-ms", "240000"])
        assert len(out.split()) == len(corpus), out[-500:]
        qids = [enc_ids(q, key, enc_e) for q in queries]
        state["qids"] = qids
        # the worker follows the topic: wait until a search sees the whole index
        end = time.time() + 60
        while True:
            r = search(qids[:1], key_id, rt)[0]
            if r["status"] == "ok" and len(r["output"]["hits"]) == K:
                break
            assert time.time() < end, f"index not searchable: {r}"
            time.sleep(1)
        replies = search(qids, key_id, rt)
        state["replies"] = replies
        worst = 0.0
        for q, r in zip(queries, replies):
            assert r["status"] == "ok", r
            pq = plain_embed(q)
            sc = plain_docs @ pq
            top = np.argsort(-sc, kind="stable")[:K]
            want = [corpus[i]["id"] for i in top]
            got = [h["id"] for h in r["output"]["hits"]]
            assert got == want, f"{q!r}: blind {got} vs plaintext {want}"
            worst = max(worst, max(abs(h["score"] - sc[i]) for h, i in zip(r["output"]["hits"], top)))
        assert worst <= 1e-5, f"scores differ by {worst:.3g}"
        return (f"{len(corpus)} documents indexed blind; {len(queries)} held-out queries: blind "
                f"top-{K} == exact plaintext top-{K} for all, scores within {worst:.2g}")

    def nothing_readable():
        vals = read_topic(f"ee.index.{idx_name}")
        blob = b"\n".join(vals)
        assert len(vals) >= len(corpus), len(vals)
        leaks = [d["id"] for d in corpus if d["text"][:40].encode() in blob]
        assert not leaks, f"plaintext of {leaks[:3]} in the index topic"
        reqs = b"\n".join(read_topic("ee.requests.minilm.small"))
        qleaks = [q for q in queries if q.encode() in reqs or q.split()[-1].encode() in reqs]
        assert not qleaks, f"query text in the request topic: {qleaks[:2]}"
        return (f"{len(vals)} index records and the request topic hold no document or query "
                f"text (sealed documents, encrypted ids)")

    def restart_reloads():
        w2 = worker("wrag2", [f"minilm={enc_e}"], f"{idx_name}=minilm:hnsw")
        workers.append(w2)
        ev = w2.wait("index_loaded")
        assert ev["documents"] == len(corpus), ev
        w1.stop()  # only w2 serves now
        time.sleep(8)
        w2.wait("partitions_assigned", pred=lambda e: len(e.get("partitions", [])) > 0)
        rep = search(state["qids"], key_id, rt)
        same = sum([h["id"] for h in a["output"]["hits"]] == [h["id"] for h in b["output"]["hits"]]
                   for a, b in zip(rep, state["replies"]))
        diffs = [([h["id"] for h in a["output"]["hits"]], [h["id"] for h in b["output"]["hits"]])
                 for a, b in zip(rep, state["replies"])
                 if [h["id"] for h in a["output"]["hits"]] != [h["id"] for h in b["output"]["hits"]]]
        w2.stop()
        assert same >= len(queries) - 1, f"hnsw top-{K} equal to flat for {same}/{len(queries)}: {diffs[:3]}"
        return (f"a new worker loaded {ev['documents']} documents from the topic in "
                f"{ev['load_ms']:.0f} ms; its HNSW index gives the flat top-{K} for {same}/{len(queries)} queries")

    def ask():
        w3 = worker("wrag3", [f"minilm={enc_e}", f"smollm2={enc_l}"], f"{idx_name}=minilm:flat")
        workers.append(w3)
        w3.wait("index_loaded")
        w3.wait("partitions_assigned", pred=lambda e: len(e.get("partitions", [])) > 1)
        q = queries[0]
        o = json.loads(run([prod, "ask", "--bootstrap", ARGS.bootstrap, "--model", "minilm",
                            "--index", idx_name, "--key", key, "--plain-model", ARGS.encoder,
                            "--llm", "smollm2", "--llm-plain-model", ARGS.llm, "--question", q,
                            "--k", "2", "--max-tokens", "48", "--json", "--reply-to", rt,
                            "--timeout-ms", "240000"], timeout=300))
        w3.stop()
        # the same pipeline without encryption
        sc = plain_docs @ plain_embed(q)
        top = [corpus[i] for i in np.argsort(-sc, kind="stable")[:2]]
        prompt = ("Answer the question using the context.\n\nContext:\n" +
                  "".join(f"- {d['text']}\n" for d in top) + f"\nQuestion: {q}")
        assert [s["id"] for s in o["sources"]] == [d["id"] for d in top], o["sources"]
        assert o["prompt"] == prompt, (o["prompt"], prompt)
        plain = json.loads(ee_model("generate", "--model", ARGS.llm, "--chat", "--prompt", prompt,
                                    "--max-tokens", "48", "--threads", "2", "--json"))
        assert o["answer"] == plain["text"], (o["answer"], plain["text"])
        return (f"{q!r} -> {o['answer'][:80]!r}... (sources {[s['id'] for s in o['sources']]}); "
                f"equal to the plaintext pipeline's answer")

    try:
        case("index_and_search", index_and_search)
        if "replies" in state:
            case("nothing_readable", nothing_readable)
            case("restart_reloads", restart_reloads)
        case("ask", ask)
    finally:
        for w in workers:
            w.stop()
    print(f"rag_test: {'FAILED' if failures else 'ok'} ({failures} failed)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
