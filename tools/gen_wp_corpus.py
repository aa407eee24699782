#!/usr/bin/env python3
"""Generate tests/data/wp_corpus.txt: the WordPiece (BERT) tokenizer's own
test lines. Same format as tests/data/tok_corpus.txt (one JSON string a
line); the tests read both files, the BPE corpus first: a hand-written set
aimed at each BertNormalizer / BertPreTokenizer / WordPiece rule, then
seeded random lines mixing those ingredients with code points drawn from
across the Unicode planes, then one long line. Deterministic and
independent of the Python version's Unicode tables.

Usage: python3 tools/gen_wp_corpus.py [--out tests/data/wp_corpus.txt]
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tok_corpus  # noqa: E402

SEED = 20250602
N_GENERATED = 1000

SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]

TRICKY = [
    # Special tokens typed in the text (matched as typed, before normalizing).
    "[CLS] hello [SEP] world [SEP]",
    "The capital of France is [MASK].",
    "[MASK][MASK][MASK]",
    "x[MASK]y and [UNK] and [PAD]",
    "[cls] [Sep] [ MASK ] [MASK [MASK] MASK] [[CLS]] [SEP[SEP]]",
    "[unused0] [unused1] [unused993] [unused994] [UNUSED0]",
    "[CLS]",
    "[SEP][CLS][PAD][UNK][MASK]",
    "\u00c0[MASK]\u00c9 and \u4e2d[SEP]\u6587",
    # Accents, precomposed and decomposed, stacked and reordered.
    "Caf\u00e9 na\u00efve fa\u00e7ade r\u00e9sum\u00e9 co\u00f6perate \u00c5ngstr\u00f6m \u00d8re \u0141\u00f3d\u017a \u00c6r\u00f8",
    "Cafe\u0301 nai\u0308ve fac\u0327ade re\u0301sume\u0301",
    "\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5 \u00e0\u00e1\u00e2\u00e3\u00e4\u00e5 \u00c8\u00c9\u00ca\u00cb \u00d1 \u00f1 \u00dd \u00ff",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 nhi\u1ec1u d\u1ea5u: \u0111\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i",
    "a\u0301\u0323 a\u0323\u0301 \u1ea1\u0301 \u1ea5\u0323 q\u0307\u0323 q\u0323\u0307",
    "Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358\u0359\u035a\u035b\u035c\u035d\u035e\u035f\u0360\u0361",
    "\u0390 \u03b0 \u1f82 \u1fb7 \u1ff7 \u0386\u0388\u0389\u038a\u038c\u038e\u038f",
    # Lowercasing: Greek and Cyrillic case, final sigma, multi-character.
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u03a3 \u03c3 \u03c2 \u039a\u0391\u039b\u0397\u039c\u0395\u03a1\u0391",
    "\u041f\u0420\u0418\u0412\u0415\u0422 \u041c\u0418\u0420 \u0401\u0416\u0418\u041a \u0419\u043e\u0433\u0430 \u0451\u0436 \u0407\u0406 \u040e\u045e",
    "\u0130stanbul ISTANBUL \u0131stanbul istanbul \u0130 \u0131 i\u0307 I\u0307 D\u0130YARBAKIR",
    "Stra\u00dfe STRASSE \u1e9e \u00df STRA\u1e9eE \u1e9e\u1e9e\u1e9e",
    "\u01c4 \u01c5 \u01c6 \u01c7 \u01c8 \u01c9 \u01ca \u01cb \u01cc \u01f1 \u01f2 \u01f3",
    "\u2126 \u212a \u212b \u03a9 K \u00c5 \u2160\u2161\u2162 \u24b6\u24b7 \U00010400\U00010401 \U0001e900",
    "\u1c89\u1c8a \ua7cb \ua7cc\ua7cd \ua7da\ua7db \ua7dc \U00010d50\U00010d51 \U00016ea0",
    # Ligatures, full width, math, letterlike.
    "Ligatures: \ufb01 \ufb02 \ufb00 \ufb03 \ufb04 \ufb05 \ufb06 \u0132 \u0133 \u0152 \u0153 \u00c6 \u00e6",
    "\uff21\uff22\uff23 \uff41\uff42\uff43 \uff11\uff12\uff13 \uff01\uff1f\uff08\uff09\uff3b\uff3d\uff5b\uff5d\uff0c\uff0e\uff1a\uff1b",
    "Math: \u2200x\u2208\u211d, \u2203y: x\u00b2 + y\u00b2 \u2265 0; \u2211\u1d62 a\u1d62 = \u222b\u2080\u00b9 f(x) dx \u2248 \u03c0/4 \u2260 \u221e \u221a2",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U0001d544\U0001d552\U0001d565\U0001d559 \U0001d400\U0001d401 \u2102\u2115\u211a",
    "\u00bd \u00bc \u2153 \u2154 \u00b9\u00b2\u00b3 \u2070\u2074 \u2080\u2081 \u2460\u2461 \u2776 \u216b",
    # CJK: unified, extensions, compatibility ideographs, kana, Hangul.
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u3400\u3401\u4db5 \U00020000\U00020001\U0002a6d6 \U0002a700 \U0002b740 \U0002b820 \U0002ceb0 \U00030000",
    "\uf900\uf901\uf902 \ufa0e \ufa6d \U0002f800\U0002f801 \u2e80 \u2f00 \u31c0 \u3007 \u3021",
    "\u6a5f\u68b0\u5b66\u7fd2\u306f\u4eba\u5de5\u77e5\u80fd\u306e\u4e00\u5206\u91ce\u3067\u3059\u3002\u3072\u3089\u304c\u306a\u3068\u30ab\u30bf\u30ab\u30ca",
    "\u304c\u3071 \u30ac\u30d1 \u309b\u309c \u3099\u309a \uff76\uff9e \uff8a\uff9f",
    "\uc548\ub155\ud558\uc138\uc694, \uc138\uacc4! \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4. \u1100\u1161\u11a8 \u3131\u314f",
    # Emoji, old and new (Unicode 11+ is unknown to the crates' tables).
    "Emoji: \U0001f600 \U0001f603 \U0001f680 \U0001f389 \u2764\ufe0f \U0001f44d\U0001f3fd \U0001f1eb\U0001f1f7",
    "New emoji: \U0001f970 \U0001f971 \U0001fae0 \U0001fa77 \U0001faf6\U0001f3fb \U0001f6dd \U0001fabf",
    "Family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f3f3\ufe0f\u200d\U0001f308 \U0001f9d1\U0001f3ff\u200d\U0001f680",
    "Keycaps 1\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3 tags \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "a\U0001f600b c\u2603d e\u2602f snow\u2603man",
    # Zero-width and format characters, soft hyphen, bidi marks.
    "Zero\u200bwidth\u200cjoin\u200dtest\ufeffBOM\u2060word\u180esep",
    "co\u00adoperate re\u00adsume\u00ad \u00ad",
    "Right-to-left \u200f mark \u200e and \u202a\u202b\u202c\u202d\u202e \u2066\u2067\u2068\u2069",
    "\u0600\u0601 \u061c \u06dd \u070f \u0890\u0891 \u08e2 \U000110bd \U000110cd \U00013430\U00013438 \U0001bca0",
    # Control characters and whitespace of every kind.
    "nul\u0000inside \u0000\u0000 and bell\u0007 esc\u001b[31m del\u007f",
    "c1 \u0080\u0081\u0085\u0090\u009f controls, \u001c\u001d\u001e\u001f separators",
    "tab\there nl\nthere cr\rthere vt\u000bthere ff\u000cthere",
    "spaces\u00a0nbsp\u1680ogham\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000end",
    "private \ue000\uf8ff \U000f0000 \U0010fffd use, noncharacters \ufdd0 \ufffe \uffff \U0001fffe",
    "replacement \ufffd char \ufffd\ufffd and \ufffdword\ufffd",
    # Marks the crates' (Unicode 9) tables do not know, and scripts with
    # combining classes: Hebrew points, Arabic harakat, Devanagari, Thai.
    "\u07fd \u0898\u0899 \u08ca\u08d3 \u09fe \u0afa \u0c3c \u0d3b \u1ab0\u1abe\u1abf\u1ac0 \u1df6\u1dfa\u1dfb \ua82c \U00010d24 \U00011938",
    "\u061d \u09fd \u0a76 \u0c77 \u0c84 \u166d \u1b7d \u2e43\u2e44\u2e4f \u2e52\u2e5d \U00010ead \U00010f55 \U00011b00",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd \u05e9\u05c1\u05b8 \u05d1\u05bc\u05b0 \u05d1\u05b0\u05bc",
    "\u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627 \u0628\u0650\u0627\u0644\u0652\u0639\u064e\u0627\u0644\u064e\u0645\u0650 \u0651\u064e \u064e\u0651",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e \u0915\u093c \u0958 \u0915\u094d\u200d\u0937",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01 \u0e01\u0e48\u0e32\u0e49",
    "spacing marks \u1b05\u1b44\u1b44 \u302e\u302f \u0f39 \U0001d15f \U0001d160 \U0001d165\U0001d16d \U0001d16d\U0001d165",
    "x\U0001d16d\U0001d165\U0001d166\u0301\U0001d16e y \U0001d16d\u0300\U0001d165",
    # Punctuation of every kind, ASCII and Unicode.
    "#!@$%^&*()_+-=[]{}|;':\",./<>?`~",
    "\u00ab\u00bb \u201e\u201c \u201c\u201d \u2018\u2019 \u2014\u2013 \u2026 \u00bf\u00a1 \u00b7 \u2022 \u00a7 \u00b6 \u203d \u2e18",
    "\u3001\u3002\u300c\u300d\u300e\u300f\u3010\u3011 \u055c\u055d\u055e \u0589 \u05be \u060c\u061b\u061f \u066a\u066b \u06d4",
    "$100 \u20ac50 \u00a330 \u00a51000 \u20b9500 \u20bf0.01 + - = < > ^ ` | ~ \u00ac \u00b1 \u00d7 \u00f7",
    "don't can't won't it's I'm you're we've they'll o'clock rock'n'roll",
    "Wait... what?!?! No way!!! e.g. i.e. U.S.A. Ph.D.",
    # Long words: 99, 100, 101 characters after normalization.
    "a" * 99,
    "b" * 100,
    "c" * 101,
    "x " + "d" * 100 + " y " + "e" * 101 + " z",
    "\u00e9" * 100,
    "\u00e9" * 101,
    "e\u0301" * 100 + " " + "e\u0301" * 101,
    "\u0130" * 100 + " " + "\u0130" * 101,
    "\u1e9e" * 100 + " " + "\u00df" * 101,
    "\u4e2d" * 150,
    "1234567890" * 10 + " " + "1234567890" * 10 + "1",
    "https://example.com/" + "abcdefghij" * 12 + "?q=1",
    "pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch Taumatawhakatangihangakoauauotamateaturipukakapikimaungahoronukupokaiwhenuakitanatahu",
    "\U0001d165" * 99 + "\u0301",
    "a" + "\U0001d165" * 102 + "b",
    "a" + "\u0301" * 300 + "b",
    # Words nothing in the vocabulary spells.
    "\u2603 \u2603\u2603 a\u2603 \u2603a \U0001f600\U0001f600 \U0001d11e \u0f00 \u16a0\u16a1",
    "qqqqqqqqqq zzzzxxxxqqqq \u0561\u0562\u0563 \u10d0\u10d1\u10d2 \u1200\u1201",
    # Empty and blank.
    "",
    " ",
    "\u0000",
    "\u200b\u200c\u200d",
    "\ufffd",
]

MARKS = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u0323", "\u0327", "\u0334", "\u0345",
         "\u05b0", "\u05bc", "\u064e", "\u0651", "\u093c", "\u094d", "\u0e48", "\u302e",
         "\U0001d165", "\U0001d16d", "\u1b44", "\ufe0f", "\u20e3", "\u07fd", "\u1df6", "\u0898"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "\u2028", "\u0085", "\u000b",
          "\u200b", "\u180e", "\u1680", "\u202f"]
CONTROLS = ["\u0000", "\u0001", "\u0007", "\u001b", "\u007f", "\u0080", "\u009f", "\u00ad", "\u200e",
            "\ufeff", "\ue000", "\ufffd", "\U000e0041", "\U000f0001"]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + [
    "\u00a1", "\u00bf", "\u2014", "\u2026", "\u3002", "\uff01", "\u300c", "\u061f", "\u2e5d", "\u166d",
    "\u00a7", "\u20ac", "\u00b1", "\u2200"]
LETTERS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "\u00e0\u00e9\u00ee\u00f5\u00fc\u00c0\u00c9\u00ce\u00d5\u00dc\u00df\u1e9e\u0130\u0131"
           "\u03b1\u03b2\u03a3\u03c2\u0414\u0434\u0401\u0451\u01c5\u212b\u2126\ufb01")
# Blocks to draw code points from (with their neighbourhoods' rarities).
RANGES = [(0x00A0, 0x024F), (0x0250, 0x036F), (0x0370, 0x052F), (0x0530, 0x08FF), (0x0900, 0x0DFF),
          (0x0E00, 0x109F), (0x10A0, 0x1DFF), (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x2C00, 0x2E7F),
          (0x2E80, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xABFF), (0xAC00, 0xD7FF),
          (0xF900, 0xFFFF), (0x10000, 0x1BFFF), (0x1D000, 0x1FBFF), (0x20000, 0x2FA1F), (0x30000, 0x3134F),
          (0xE0000, 0xE01EF)]


def rand_cp(r):
    lo, hi = r.choice(RANGES)
    return chr(r.randint(lo, hi))


def rand_word(r):
    k = r.random()
    if k < 0.45:
        w = r.choice(gen_tok_corpus.WORDS)
        return w.upper() if r.random() < 0.2 else w.capitalize() if r.random() < 0.2 else w
    if k < 0.65:
        return "".join(r.choice(LETTERS) for _ in range(r.randint(1, 12)))
    if k < 0.95:
        return "".join(rand_cp(r) for _ in range(r.randint(1, 6)))
    return "".join(r.choice(LETTERS) for _ in range(r.randint(90, 110)))


def rand_fragment(r):
    k = r.random()
    if k < 0.40:
        w = rand_word(r)
        for _ in range(r.choice([0, 0, 0, 1, 2, 5])):
            i = r.randint(0, len(w))
            w = w[:i] + r.choice(MARKS) + w[i:]
        return w
    if k < 0.50:
        return "".join(r.choice(PUNCT) for _ in range(r.randint(1, 4)))
    if k < 0.58:
        return r.choice(SPECIALS)
    if k < 0.64:
        return r.choice(CONTROLS)
    if k < 0.70:
        return gen_tok_corpus.rand_number(r)
    if k < 0.76:
        return r.choice(gen_tok_corpus.EMOJI)
    if k < 0.84:
        return gen_tok_corpus.rand_script(r)
    if k < 0.92:
        return r.choice(TRICKY)
    return r.choice(gen_tok_corpus.PROSE)


def rand_line(r):
    parts = []
    for _ in range(r.randint(1, 30)):
        parts.append(rand_fragment(r))
        x = r.random()
        if x < 0.6:
            parts.append(" ")
        elif x < 0.85:
            parts.append(r.choice(SPACES))
    return "".join(parts)


def corpus():
    lines = list(TRICKY)
    r = random.Random(SEED)
    lines += [rand_line(r) for _ in range(N_GENERATED)]
    # One long line (about 20 KB) for linearity.
    lines.append(" ".join(rand_line(r) for _ in range(40)))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/wp_corpus.txt")
    a = ap.parse_args()
    gen_tok_corpus.write_lines(a.out, corpus())


if __name__ == "__main__":
    main()
