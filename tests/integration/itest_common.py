"""Helpers shared by the sealed-jobs test and the chaos soak: the cached
key + encrypted model, and the request-signature digest rebuilt
independently of the C code (docs/PROTOCOL.md, "Signatures")."""
import hashlib
import json
import os
import struct


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
