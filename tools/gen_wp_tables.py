"""The WordPiece (BERT) normalizer's Unicode tables: core/text/ee_wp_tables.c.

Run through tools/gen_unicode_tables.py --wp (needs the `tokenizers` package
of tests/ref/requirements.txt; the output is committed).

What HF `tokenizers` (BertNormalizer + BertPreTokenizer) asks of Unicode
comes from three Rust sources of three different Unicode versions:
  - control (Cc Cf Co), punctuation (P*) and nonspacing mark (Mn): the
    `unicode_categories` 0.1.1 crate, Unicode 9.0-era tables;
  - NFD (decomposition and canonical combining classes): the
    `unicode-normalization-alignments` crate, also Unicode 9.0-era;
  - whitespace and to_lowercase: Rust's std, Unicode 17.0 in the build of
    tokenizers 0.23.3.
No single Python unicodedata matches that mixture (Python 3.11's is 14.0;
unicodedata2 offers 13.0..18.0 and none builds older on 3.11), and the
target is the ids `tokenizers` gives. So the per-code-point facts are asked
of `tokenizers` itself, one code point at a time through its own normalizer
and pre-tokenizer components, and Python's unicodedata supplies only the
canonical combining class values (a stable property: the crate either has a
code point's class or, for code points it does not know, 0, which the probe
tells apart). --wp-report lists where the result differs from Python's
unicodedata.

Per code point the C side gets one flags byte (two-stage table, O(1)) and,
for flagged code points, a sorted (binary-searched) table of the NFD
decomposition, the lowercase mapping and the combining class:
  REMOVE  clean_text drops it (NUL, U+FFFD, control other than \\t \\n \\r)
  SPACE   clean_text maps it to ' ' (\\t \\n \\r and Rust's is_whitespace)
  PUNCT   BertPreTokenizer isolates it (ASCII punctuation or P*)
  MN      strip_accents drops it (nonspacing mark; only for NFD-stable
          code points, the only ones NFD output holds)
  DECOMP  NFD changes it (see the decomposition table)
  LOWER   to_lowercase changes it (see the lowercase table)
  CCC     nonzero canonical combining class (see the ccc table)
  CJK     handle_chinese_chars pads it with spaces (bert.rs's ranges)
"""
import sys
import unicodedata

MAX_CP = 0x110000
REMOVE, SPACE, PUNCT, MN, DECOMP, LOWER, CCC, CJK = (1 << i for i in range(8))
FLAG_NAMES = ["REMOVE", "SPACE", "PUNCT", "MN", "DECOMP", "LOWER", "CCC", "CJK"]

# tokenizers/src/normalizers/bert.rs is_chinese_char (not Unicode data).
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

BLOCK = 256


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def code_points():
    for cp in range(MAX_CP):
        if not 0xD800 <= cp <= 0xDFFF:  # not representable in Rust strings
            yield cp


def wp_probe():
    """Ask `tokenizers` about every code point. Returns (flags, decomp,
    lower, ccc, version): flags[cp] for all cp, and dicts cp -> tuple of
    code points / class for the flagged ones."""
    import tokenizers
    from tokenizers import normalizers, pre_tokenizers

    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                       strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                       strip_accents=True, lowercase=False)
    nfd = normalizers.NFD()
    low = normalizers.Lowercase()
    pre = pre_tokenizers.BertPreTokenizer()

    flags = [0] * MAX_CP
    decomp, lower, ccc = {}, {}, {}
    for cp in code_points():
        c = chr(cp)
        f = 0
        r = clean.normalize_str("a" + c + "a")
        if r == "aa":
            f |= REMOVE
        elif r == "a a":
            f |= SPACE
        elif r != "a" + c + "a":
            raise SystemExit("U+%04X: clean_text gave %r" % (cp, r))
        n = len(pre.pre_tokenize_str("a" + c + "a"))
        if n == 3:
            f |= PUNCT
        elif n == 2 and not f & SPACE and not c.isspace():
            raise SystemExit("U+%04X: BertPreTokenizer split it away but it is not whitespace" % cp)
        d = nfd.normalize_str(c)
        if d != c:
            f |= DECOMP
            decomp[cp] = tuple(ord(x) for x in d)
        elif strip.normalize_str(c) == "":
            f |= MN
        l = low.normalize_str(c)
        if l != c:
            f |= LOWER
            lower[cp] = tuple(ord(x) for x in l)
        if is_cjk(cp):
            f |= CJK
        flags[cp] = f

    # Canonical combining classes the NFD crate knows: a class k > 1 makes
    # X swap with a following U+0334 (class 1); 0 < k < 230 makes it swap
    # with a preceding U+0301 (class 230). Neither: the crate has 0.
    for cp in code_points():
        k = unicodedata.combining(chr(cp))
        if not k or flags[cp] & DECOMP:
            continue
        c = chr(cp)
        s1 = nfd.normalize_str("a" + c + "\u0334") != "a" + c + "\u0334"
        s2 = nfd.normalize_str("a\u0301" + c) != "a\u0301" + c
        if not (s1 or s2):
            continue
        if s1 != (k > 1) or s2 != (k < 230):
            raise SystemExit("U+%04X: crate's combining class is not unicodedata's %d" % (cp, k))
        ccc[cp] = k
        flags[cp] |= CCC

    check(flags, decomp, lower, ccc, strip)
    return flags, decomp, lower, ccc, tokenizers.__version__


def check(flags, decomp, lower, ccc, strip):
    """What the C side relies on, checked rather than assumed."""
    for cp, d in decomp.items():
        if flags[cp] & (REMOVE | SPACE):
            continue  # clean_text handles it before NFD sees it
        if len(d) > 4:
            raise SystemExit("U+%04X decomposes to %d code points" % (cp, len(d)))
        for x in d:  # NFD output is NFD-stable and not removed or spaced
            if flags[x] & (DECOMP | REMOVE | SPACE):
                raise SystemExit("U+%04X decomposes to U+%04X (flags %02x)" % (cp, x, flags[x]))
        want = "".join(chr(x) for x in d if not flags[x] & MN)
        if strip.normalize_str(chr(cp)) != want:
            raise SystemExit("U+%04X: strip_accents is not NFD minus Mn" % cp)
    for cp, l in lower.items():
        if flags[cp] & (REMOVE | SPACE):
            continue
        if len(l) > 3:
            raise SystemExit("U+%04X lowercases to %d code points" % (cp, len(l)))
        for x in l:
            if flags[x] & (REMOVE | SPACE):
                raise SystemExit("U+%04X lowercases to U+%04X (flags %02x)" % (cp, x, flags[x]))
    for cp in ccc:  # a combining run's survivors only ever join a word
        if flags[cp] & (PUNCT | SPACE | REMOVE | LOWER):
            raise SystemExit("U+%04X has a combining class and flags %02x" % (cp, flags[cp]))
    if flags[ord(" ")] != SPACE or not flags[0] & REMOVE or not flags[0xFFFD] & REMOVE:
        raise SystemExit("space, NUL or U+FFFD misclassified")


def c_array(lines, ctype, name, values, fmt, per_row):
    lines.append("const %s %s[%d] = {" % (ctype, name, len(values)))
    for i in range(0, len(values), per_row):
        lines.append("    " + ", ".join(fmt % v for v in values[i:i + per_row]) + ",")
    lines.append("};")


def seq_table(lines, prefix, mapping):
    """Sorted keys, offsets into one pool, lengths."""
    keys = sorted(mapping)
    pool, off, ln = [], [], []
    for k in keys:
        off.append(len(pool))
        ln.append(len(mapping[k]))
        pool.extend(mapping[k])
    lines.append("const uint32_t %s_n = %d;" % (prefix, len(keys)))
    c_array(lines, "uint32_t", prefix + "_cp", keys, "0x%05x", 8)
    c_array(lines, "uint16_t", prefix + "_off", off, "%d", 12)
    c_array(lines, "uint8_t", prefix + "_len", ln, "%d", 16)
    c_array(lines, "uint32_t", prefix + "_pool", pool, "0x%05x", 8)


# Hangul syllables decompose algorithmically (Unicode 3.12); the C side
# computes them instead of storing 11,172 entries.
S_BASE, L_BASE, V_BASE, T_BASE, V_COUNT, T_COUNT, S_COUNT = (
    0xAC00, 0x1100, 0x1161, 0x11A7, 21, 28, 11172)


def hangul(cp):
    s = cp - S_BASE
    t = T_BASE + s % T_COUNT
    out = (L_BASE + s // (V_COUNT * T_COUNT), V_BASE + (s % (V_COUNT * T_COUNT)) // T_COUNT)
    return out + ((t,) if t != T_BASE else ())


def write_c(path):
    flags, decomp, lower, ccc, version = wp_probe()
    for cp in range(S_BASE, S_BASE + S_COUNT):
        if decomp.pop(cp) != hangul(cp):
            raise SystemExit("U+%04X: NFD is not the Hangul algorithm's" % cp)
    blocks, stage1 = {}, []
    for b in range(MAX_CP // BLOCK):
        blk = tuple(flags[b * BLOCK:(b + 1) * BLOCK])
        stage1.append(blocks.setdefault(blk, len(blocks)))
    if len(blocks) > 256:
        raise SystemExit("%d distinct blocks: stage1 needs uint16" % len(blocks))
    stage2 = [f for blk in sorted(blocks, key=blocks.get) for f in blk]

    lines = []
    lines.append("/* GENERATED FILE - do not edit.")
    lines.append(" * Regenerate with: .cache/venv/bin/python tools/gen_unicode_tables.py --wp")
    lines.append(" * Source: every code point asked of HF tokenizers %s (its BertNormalizer," % version)
    lines.append(" * BertPreTokenizer, NFD and Lowercase), combining class values from")
    lines.append(" * Python %s unicodedata (Unicode %s); see tools/gen_wp_tables.py." % (
        sys.version.split()[0], unicodedata.unidata_version))
    lines.append(" * Flags: see ee_wp_normalize.h. */")
    lines.append('#include "ee_wp_normalize.h"')
    lines.append("")
    lines.append("#include <stdint.h>")
    lines.append("")
    lines.append('const char ee_wp_tables_source[] = "tokenizers %s";' % version)
    lines.append("")
    lines.append("/* flags(cp) = ee_wp_stage2[ee_wp_stage1[cp >> 8] << 8 | (cp & 0xFF)] */")
    c_array(lines, "uint8_t", "ee_wp_stage1", stage1, "%d", 24)
    c_array(lines, "uint8_t", "ee_wp_stage2", stage2, "0x%02x", 16)
    lines.append("")
    lines.append("/* NFD of each DECOMP code point but the Hangul syllables U+AC00..U+D7A3. */")
    seq_table(lines, "ee_wp_decomp", decomp)
    lines.append("")
    lines.append("/* Rust char::to_lowercase of each LOWER code point. */")
    seq_table(lines, "ee_wp_lower", lower)
    lines.append("")
    lines.append("/* (cp << 8 | class) of each CCC code point, sorted. */")
    keys = sorted(ccc)
    lines.append("const uint32_t ee_wp_ccc_n = %d;" % len(keys))
    c_array(lines, "uint32_t", "ee_wp_ccc", [(k << 8) | ccc[k] for k in keys], "0x%08x", 6)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d blocks, %d decompositions, %d lowercase mappings, %d classes "
          "(tokenizers %s)" % (path, len(blocks), len(decomp), len(lower), len(ccc), version))


def report():
    """Where tokenizers' answers differ from Python's unicodedata (what a
    generator built on unicodedata alone would get wrong)."""
    flags, decomp, lower, ccc, version = wp_probe()
    ud = unicodedata
    ws = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F,
          0x3000, *range(0x2000, 0x200B)}  # Unicode White_Space (Rust is_whitespace)
    diffs = {}

    def note(kind, cp, ours, theirs):
        diffs.setdefault(kind, []).append((cp, ours, theirs))

    for cp in code_points():
        c = chr(cp)
        cat = ud.category(c)
        f = flags[cp]
        rm = cp in (0, 0xFFFD) or (c not in "\t\n\r" and cat in ("Cc", "Cf", "Co"))
        if rm != bool(f & REMOVE):
            note("control (Cc Cf Co)", cp, cat, "kept" if rm else "removed")
        elif not rm and (cp in ws) != bool(f & SPACE):
            note("whitespace", cp, cat, bool(f & SPACE))
        p = (cp < 128 and not c.isalnum() and 0x21 <= cp <= 0x7E) or cat[0] == "P"
        if p != bool(f & PUNCT) and not f & (REMOVE | SPACE):
            note("punctuation (P*)", cp, cat, "punct" if f & PUNCT else "not punct")
        d = ud.normalize("NFD", c)
        hd = "".join(map(chr, decomp.get(cp, (cp,))))
        if d != hd:
            note("NFD decomposition", cp, cat, "none" if hd == c else hd)
        elif d == c and (cat == "Mn") != bool(f & MN):
            note("nonspacing mark (Mn)", cp, cat, "Mn" if f & MN else "not Mn")
        if d == c and ud.combining(c) != ccc.get(cp, 0):
            note("combining class", cp, ud.combining(c), ccc.get(cp, 0))
        hl = "".join(map(chr, lower.get(cp, (cp,))))
        if c.lower() != hl:
            note("lowercase", cp, c.lower(), hl)
    print("tokenizers %s vs Python %s unicodedata (Unicode %s):" % (
        version, sys.version.split()[0], ud.unidata_version))
    for kind, v in diffs.items():
        print("  %-22s %4d code points, e.g. %s" % (kind, len(v), ", ".join(
            "U+%04X (%s -> %s)" % x for x in v[:4])))
    return 0
