/* ee_key: key generation, key files, deterministic streams and the random
 * transforms derived from them. See ee_key.h for the contract and
 * docs/SECURITY.md for the key-handling rules.
 *
 * Determinism. Encrypted models must be byte-identical for the same key on
 * every machine, compiler and libm, so everything that turns stream bits
 * into numbers uses only IEEE-754 +, -, *, / and sqrt (correctly rounded
 * everywhere) in a fixed order: no libm transcendental (glibc picks FMA or
 * non-FMA variants of log/exp/cos at run time and does not promise
 * correctly rounded results), no BLAS, no threads, no reassociation. The
 * pragmas below forbid contracting a*b+c into an FMA (GCC already does not
 * in ISO C mode, -std=c11, but a -std=gnu11 or -ffp-contract=fast build
 * would). The unit tests pin known answers
 * (hashes of streams, Gaussians and a 64x64 rotation) so any change in
 * these bits is caught. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "ee_key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAGIC "EEKEY001"
#define KEYFILE_MAGIC_LEN 8
#define KEYFILE_CHECK_LEN 16
#define KEYFILE_LEN (KEYFILE_MAGIC_LEN + EE_KEY_BYTES + KEYFILE_CHECK_LEN) /* 56 */

/* BLAKE2b keys for domain separation. Both are exactly 16 bytes (BLAKE2b's
 * documented minimum key length in libsodium): the key-id key is the 16
 * characters "eeinfer.keyid.v1", the key-file check key is the 15
 * characters "eeinfer.keyfile" followed by one zero byte. */
static const uint8_t KEYID_DOMAIN[16] = "eeinfer.keyid.v1";
static const uint8_t KEYFILE_DOMAIN[16] = "eeinfer.keyfile";
/* crypto_kdf context: exactly crypto_kdf_CONTEXTBYTES (8) characters. */
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES + 1] = "eeinfer1";

int ee_sodium_init(ee_err *err) {
    /* sodium_init is itself idempotent and thread-safe (it takes a lock);
     * 0 = initialised now, 1 = already initialised. */
    if (sodium_init() < 0) return ee_err_set(err, "libsodium: sodium_init failed");
    return 0;
}

static void key_fill_id(ee_key *k) {
    uint8_t fp[EE_KEY_ID_BYTES];
    crypto_generichash(fp, sizeof fp, k->secret, EE_KEY_BYTES, KEYID_DOMAIN, sizeof KEYID_DOMAIN);
    sodium_bin2hex(k->id, sizeof k->id, fp, sizeof fp);
    sodium_memzero(fp, sizeof fp);
}

void ee_key_from_bytes(ee_key *k, const uint8_t secret[EE_KEY_BYTES]) {
    (void)ee_sodium_init(NULL);
    memmove(k->secret, secret, EE_KEY_BYTES);
    key_fill_id(k);
}

int ee_key_generate(ee_key *k, ee_err *err) {
    sodium_memzero(k, sizeof *k);
    if (ee_sodium_init(err) < 0) return -1;
    randombytes_buf(k->secret, EE_KEY_BYTES);
    key_fill_id(k);
    return 0;
}

static const char BIND_DOMAIN[] = "eeinfer.model-bind.v2";

void ee_key_bind(const ee_key *master, const uint8_t fp[EE_MODEL_FP_BYTES], ee_key *bound) {
    (void)ee_sodium_init(NULL);
    uint8_t secret[EE_KEY_BYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, master->secret, EE_KEY_BYTES, sizeof secret);
    crypto_generichash_update(&st, (const uint8_t *)BIND_DOMAIN, sizeof BIND_DOMAIN - 1);
    crypto_generichash_update(&st, fp, EE_MODEL_FP_BYTES);
    crypto_generichash_final(&st, secret, sizeof secret);
    sodium_memzero(&st, sizeof st);
    ee_key_from_bytes(bound, secret); /* bound may alias master: secret is a copy */
    sodium_memzero(secret, sizeof secret);
}

void ee_key_wipe(ee_key *k) {
    if (k) sodium_memzero(k, sizeof *k);
}

bool ee_key_id_equal(const char *a, const char *b) {
    if (!a || !b) return false;
    /* The lengths are public (ids are fixed-size hex); only the bytes are
     * compared in constant time. */
    size_t la = strnlen(a, 4096), lb = strnlen(b, 4096);
    if (la != lb || la == 0) return false;
    return sodium_memcmp(a, b, la) == 0;
}

/* ---- key files ----------------------------------------------------------- */

static void keyfile_check(uint8_t out[KEYFILE_CHECK_LEN], const uint8_t secret[EE_KEY_BYTES]) {
    crypto_generichash(out, KEYFILE_CHECK_LEN, secret, EE_KEY_BYTES, KEYFILE_DOMAIN,
                       sizeof KEYFILE_DOMAIN);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the new name survives a crash. Best
 * effort: some filesystems refuse fsync on directories. */
static void fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof dir) return;
        memcpy(dir, path, len);
        dir[len] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Publish tmp under path without ever replacing an existing path: link()
 * fails with EEXIST if path exists (even as a dangling symlink). Filesystems
 * without hard links get renameat2(RENAME_NOREPLACE), which has the same
 * guarantee. Returns 0, or -1 with errno set. */
static int publish_noreplace(const char *tmp, const char *path) {
    if (link(tmp, path) == 0) return 0;
    int e = errno;
    if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != ENOSYS && e != EMLINK) {
        errno = e;
        return -1;
    }
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 1;
    if (errno == EEXIST) return -1;
#endif
    errno = e;
    return -1;
}

/* The kinds of 32-byte secret file this project writes, told apart by
 * their magic (same layout, same check, same rules). */
static const struct {
    const char *magic;
    const char *what;
} KINDS[] = {
    {KEYFILE_MAGIC, "EE key"},
    {EE_KEYFILE_POOL, "worker-pool sealing key"},
    {EE_KEYFILE_CLIENT, "client signing key"},
};

static const char *kind_name(const char *magic) {
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (memcmp(KINDS[i].magic, magic, KEYFILE_MAGIC_LEN) == 0) return KINDS[i].what;
    return NULL;
}

int ee_key_save(const ee_key *k, const char *path, ee_err *err) {
    if (!k) return ee_err_set(err, "key save: no key");
    return ee_keyfile_save(path, KEYFILE_MAGIC, k->secret, err);
}

int ee_keyfile_save(const char *path, const char *magic, const uint8_t secret[EE_KEY_BYTES],
                    ee_err *err) {
    if (!secret || !path || !*path) return ee_err_set(err, "key save: no key or empty path");
    if (ee_sodium_init(err) < 0) return -1;
    size_t plen = strlen(path);
    if (plen + 32 >= PATH_MAX) return ee_err_set(err, "key file path is too long (%zu bytes)", plen);

    /* Cheap early refusal with a clear message; the atomic guarantee comes
     * from link()/RENAME_NOREPLACE below. lstat so a dangling symlink also
     * counts as existing. */
    struct stat st;
    if (lstat(path, &st) == 0)
        return ee_err_set(err, "refusing to overwrite existing key file %s", path);
    if (errno != ENOENT)
        return ee_err_set(err, "cannot save key file %s: %s", path, strerror(errno));

    /* Temporary name in the same directory: PATH.tmp-<16 random hex>. */
    char tmp[PATH_MAX];
    uint8_t rnd[8];
    char rhex[sizeof rnd * 2 + 1];
    int fd = -1;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(rhex, sizeof rhex, rnd, sizeof rnd);
        snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rhex);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return ee_err_set(err, "cannot create temporary key file %s: %s", tmp, strerror(errno));
    }
    if (fd < 0) return ee_err_set(err, "cannot create a temporary file next to %s", path);

    uint8_t buf[KEYFILE_LEN];
    memcpy(buf, magic, KEYFILE_MAGIC_LEN);
    memcpy(buf + KEYFILE_MAGIC_LEN, secret, EE_KEY_BYTES);
    keyfile_check(buf + KEYFILE_MAGIC_LEN + EE_KEY_BYTES, secret);

    const char *step = NULL;
    int e = 0;
    /* The umask may have removed bits but never adds any; fchmod makes the
     * mode exactly 0600 whatever it is. */
    if (fchmod(fd, 0600) < 0) step = "chmod";
    else if (write_all(fd, buf, sizeof buf) < 0) step = "write";
    else if (fsync(fd) < 0) step = "fsync";
    if (step) e = errno;
    sodium_memzero(buf, sizeof buf);
    if (close(fd) < 0 && !step) {
        step = "close";
        e = errno;
    }
    if (step) {
        unlink(tmp);
        return ee_err_set(err, "cannot write key file %s (%s of %s): %s", path, step, tmp,
                          strerror(e));
    }

    int pub = publish_noreplace(tmp, path);
    if (pub < 0) {
        e = errno;
        unlink(tmp);
        if (e == EEXIST) return ee_err_set(err, "refusing to overwrite existing key file %s", path);
        return ee_err_set(err, "cannot create key file %s: %s", path, strerror(e));
    }
    if (pub == 0 && unlink(tmp) < 0) {
        e = errno;
        fsync_parent(path);
        return ee_err_set(err,
                          "saved key file %s but could not remove the temporary copy %s: %s; "
                          "delete it by hand",
                          path, tmp, strerror(e));
    }
    fsync_parent(path);
    return 0;
}

static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int ee_key_load(ee_key *k, const char *path, ee_err *err) {
    if (!k) return ee_err_set(err, "key load: no key");
    sodium_memzero(k, sizeof *k);
    uint8_t secret[EE_KEY_BYTES];
    int rc = ee_keyfile_load(path, KEYFILE_MAGIC, secret, err);
    if (rc == 0) ee_key_from_bytes(k, secret);
    sodium_memzero(secret, sizeof secret);
    return rc;
}

int ee_keyfile_load(const char *path, const char *magic, uint8_t secret[EE_KEY_BYTES],
                    ee_err *err) {
    if (!secret || !path || !*path) return ee_err_set(err, "key load: no key or empty path");
    sodium_memzero(secret, EE_KEY_BYTES);
    if (ee_sodium_init(err) < 0) return -1;

    /* Symlinks are followed on purpose (secret mounts such as Kubernetes'
     * are symlinks); every check below is on the file actually opened
     * (fstat), so the target must itself be a 0600 regular file. O_NONBLOCK
     * keeps a FIFO from blocking the open; it is refused just after. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return ee_err_set(err, "cannot open key file %s: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return ee_err_set(err, "cannot stat key file %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ee_err_set(err, "key file %s is %s", path, file_kind(st.st_mode));
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return ee_err_set(err,
                          "key file %s is readable or writable by group/others (mode %04o); "
                          "run chmod 600 %s",
                          path, (unsigned)(st.st_mode & 07777), path);
    }
    if (st.st_size != KEYFILE_LEN) {
        close(fd);
        return ee_err_set(err, "key file %s is %lld bytes, expected %d", path,
                          (long long)st.st_size, KEYFILE_LEN);
    }

    /* Read one byte more than expected to notice a file that grew. */
    uint8_t buf[KEYFILE_LEN + 1];
    size_t got = 0;
    int e = 0;
    while (got < sizeof buf) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    int rc = 0;
    if (e) {
        rc = ee_err_set(err, "cannot read key file %s: %s", path, strerror(e));
    } else if (got != KEYFILE_LEN) {
        rc = ee_err_set(err, "key file %s is %s%zu bytes, expected %d", path,
                        got > KEYFILE_LEN ? "at least " : "", got, KEYFILE_LEN);
    } else if (memcmp(buf, magic, KEYFILE_MAGIC_LEN) != 0) {
        /* Magic = letters + a version of trailing digits. */
        size_t pre = KEYFILE_MAGIC_LEN;
        while (pre > 0 && magic[pre - 1] >= '0' && magic[pre - 1] <= '9') pre--;
        bool digits = true;
        for (size_t i = pre; i < KEYFILE_MAGIC_LEN; i++) digits &= buf[i] >= '0' && buf[i] <= '9';
        const char *other = kind_name((const char *)buf), *want = kind_name(magic);
        if (other)
            rc = ee_err_set(err, "key file %s is a %s, not a %s", path, other,
                            want ? want : "key of this kind");
        else if (memcmp(buf, magic, pre) == 0 && digits)
            rc = ee_err_set(err, "key file %s has unsupported version %.8s (this build reads %.8s)",
                            path, (const char *)buf, magic);
        else
            rc = ee_err_set(err, "key file %s is not an eeinfer key file (bad magic)", path);
    } else {
        uint8_t check[KEYFILE_CHECK_LEN];
        keyfile_check(check, buf + KEYFILE_MAGIC_LEN);
        if (sodium_memcmp(check, buf + KEYFILE_MAGIC_LEN + EE_KEY_BYTES, KEYFILE_CHECK_LEN) != 0)
            rc = ee_err_set(err, "key file %s is corrupt (checksum mismatch)", path);
        else
            memcpy(secret, buf + KEYFILE_MAGIC_LEN, EE_KEY_BYTES);
        sodium_memzero(check, sizeof check);
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* ---- deterministic streams ------------------------------------------------ */

void ee_stream_init(ee_stream *s, const ee_key *k, ee_purpose purpose, uint32_t index) {
    (void)ee_sodium_init(NULL);
    sodium_memzero(s, sizeof *s);
    uint64_t subkey_id = ((uint64_t)(uint32_t)purpose << 32) | index;
    crypto_kdf_derive_from_key(s->subkey, sizeof s->subkey, subkey_id, KDF_CONTEXT, k->secret);
    s->block = 0;
    s->pos = sizeof s->buf; /* empty */
}

void ee_stream_wipe(ee_stream *s) {
    if (s) sodium_memzero(s, sizeof *s);
}

/* Next 64-byte ChaCha20 block (original construction: 64-bit zero nonce,
 * 64-bit block counter), i.e. the keystream XORed onto zeros. */
static void stream_refill(ee_stream *s) {
    static const uint8_t zero[64];
    static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    crypto_stream_chacha20_xor_ic(s->buf, zero, sizeof s->buf, nonce, s->block, s->subkey);
    s->block++;
    s->pos = 0;
}

uint64_t ee_stream_u64(ee_stream *s) {
    if (s->pos > sizeof s->buf - 8) stream_refill(s);
    const uint8_t *p = s->buf + s->pos;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    s->pos += 8;
    return v;
}

/* n <= 1 returns 0 without consuming the stream. Otherwise draws are
 * rejected below 2^64 mod n (= (-n) % n), leaving a range that is a whole
 * multiple of n, so x % n is exactly uniform. */
uint64_t ee_stream_uniform(ee_stream *s, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = ee_stream_u64(s);
        if (x >= threshold) return x % n;
    }
}

double ee_stream_unit(ee_stream *s) {
    return (double)(ee_stream_u64(s) >> 11) * 0x1p-53;
}

/* ---- portable elementary functions ---------------------------------------- */
/* Only +, -, *, / and exact scaling (frexp/ldexp) in a fixed order, so the
 * results are the same bits everywhere. Accuracy is a few ulp, far more than
 * sampling needs. */

static const double LN2_HI = 6.93147180369123816490e-01; /* low 32 bits zero */
static const double LN2_LO = 1.90821492927058770002e-10;

/* Natural log for finite x > 0. */
static double det_log(double x) {
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    /* m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1),
     * |s| <= 0.1716, s^2 <= 0.0295: 13 terms reach 1e-20. */
    double s = (m - 1.0) / (m + 1.0);
    double z = s * s;
    double p = 1.0 / 27;
    p = p * z + 1.0 / 25;
    p = p * z + 1.0 / 23;
    p = p * z + 1.0 / 21;
    p = p * z + 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    double lm = 2.0 * s + 2.0 * s * (z * p);
    double de = (double)e;
    return de * LN2_HI + (de * LN2_LO + lm);
}

/* exp for |x| <= 700. */
static double det_exp(double x) {
    double t = x / (LN2_HI + LN2_LO);
    double kd = t >= 0 ? (double)(long long)(t + 0.5) : -(double)(long long)(0.5 - t);
    double r = (x - kd * LN2_HI) - kd * LN2_LO; /* |r| <= ~0.347 */
    /* Taylor to r^17/17!: truncation < 1e-25. */
    double p = 1.0 / 355687428096000.0; /* 1/17! */
    static const double inv_fact[17] = {
        1.0,
        1.0,
        1.0 / 2,
        1.0 / 6,
        1.0 / 24,
        1.0 / 120,
        1.0 / 720,
        1.0 / 5040,
        1.0 / 40320,
        1.0 / 362880,
        1.0 / 3628800,
        1.0 / 39916800,
        1.0 / 479001600,
        1.0 / 6227020800.0,
        1.0 / 87178291200.0,
        1.0 / 1307674368000.0,
        1.0 / 20922789888000.0,
    };
    for (int i = 16; i >= 0; i--) p = p * r + inv_fact[i];
    return ldexp(p, (int)kd);
}

/* sin and cos of t for |t| <= pi/4 (Taylor; last term < 1e-19). */
static double det_sin_small(double t) {
    double z = t * t;
    double p = -1.0 / 121645100408832000.0;      /* -1/19! */
    p = p * z + 1.0 / 355687428096000.0;         /* 1/17! */
    p = p * z - 1.0 / 1307674368000.0;           /* 1/15! */
    p = p * z + 1.0 / 6227020800.0;              /* 1/13! */
    p = p * z - 1.0 / 39916800;                  /* 1/11! */
    p = p * z + 1.0 / 362880;                    /* 1/9! */
    p = p * z - 1.0 / 5040;                      /* 1/7! */
    p = p * z + 1.0 / 120;                       /* 1/5! */
    p = p * z - 1.0 / 6;                         /* 1/3! */
    return t + t * (z * p);
}

static double det_cos_small(double t) {
    double z = t * t;
    double p = 1.0 / 6402373705728000.0;         /* 1/18! */
    p = p * z - 1.0 / 20922789888000.0;          /* 1/16! */
    p = p * z + 1.0 / 87178291200.0;             /* 1/14! */
    p = p * z - 1.0 / 479001600;                 /* 1/12! */
    p = p * z + 1.0 / 3628800;                   /* 1/10! */
    p = p * z - 1.0 / 40320;                     /* 1/8! */
    p = p * z + 1.0 / 720;                       /* 1/6! */
    p = p * z - 1.0 / 24;                        /* 1/4! */
    p = p * z + 1.0 / 2;                         /* 1/2! */
    return 1.0 - z * p;
}

/* cos(2 pi u) for u in [0, 1). y = 4u and f = y - round(y) are exact, so
 * the quadrant is exact and only the small angle f pi/2 is rounded. */
static double det_cos_2pi(double u) {
    double y = 4.0 * u;
    int q = (int)(y + 0.5);
    double f = y - (double)q; /* [-0.5, 0.5] */
    double t = f * 1.57079632679489661923;
    switch (q & 3) {
    case 0: return det_cos_small(t);
    case 1: return -det_sin_small(t);
    case 2: return -det_cos_small(t);
    default: return det_sin_small(t);
    }
}

/* Box-Muller: u1 in (0, 1] so log(u1) is finite; the second value of the
 * pair is discarded so the stream position depends only on the call count. */
double ee_stream_gauss(ee_stream *s) {
    double u1 = 1.0 - ee_stream_unit(s);
    double u2 = ee_stream_unit(s);
    double r = sqrt(-2.0 * det_log(u1));
    return r * det_cos_2pi(u2);
}

/* ---- transforms ------------------------------------------------------------ */

void ee_random_permutation(ee_stream *s, uint32_t *perm, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i-- > 1;) {
        uint32_t j = (uint32_t)ee_stream_uniform(s, (uint64_t)i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void ee_permutation_invert(const uint32_t *perm, uint32_t *inv, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) inv[perm[i]] = i;
}

/* r <= 1 (or NaN) returns 1 without consuming the stream. */
double ee_random_scale(ee_stream *s, double r) {
    if (!(r > 1.0)) return 1.0;
    if (r > 1e300) r = 1e300;
    double L = det_log(r);
    double x = -L + 2.0 * L * ee_stream_unit(s);
    double v = det_exp(x);
    double lo = 1.0 / r;
    if (v > r) v = r;
    if (v < lo) v = lo;
    return v;
}

/* Dot product with 8 interleaved partial sums combined in a fixed tree: the
 * summation order is part of the output format (it fixes the bits of every
 * rotation), and it is what a compiler may vectorise without reassociating. */
static double dot8(const double *a, const double *b, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
        s4 += a[i + 4] * b[i + 4];
        s5 += a[i + 5] * b[i + 5];
        s6 += a[i + 6] * b[i + 6];
        s7 += a[i + 7] * b[i + 7];
    }
    double t = 0;
    for (; i < n; i++) t += a[i] * b[i];
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + t;
}

/* x <- H x for H = I - tau v v^T, v = (1, v1[0..m-2]), x of length m. */
static inline void apply_reflector(const double *v1, double tau, double *x, int m) {
    if (tau == 0.0) return;
    double w = tau * (x[0] + dot8(v1, x + 1, m - 1));
    x[0] -= w;
    double *y = x + 1;
    for (int i = 0; i < m - 1; i++) y[i] -= w * v1[i];
}

#define QR_NB 32 /* reflectors per panel / columns per block (cache only: */
                 /* results do not depend on it) */

int ee_random_orthogonal(ee_stream *s, double *q, int n, ee_err *err) {
    if (n < 0) return ee_err_set(err, "random orthogonal: negative size %d", n);
    if (n == 0) return 0;
    size_t nn = (size_t)n * (size_t)n;
    if ((size_t)n > SIZE_MAX / sizeof(double) / (size_t)n)
        return ee_err_set(err, "random orthogonal: size %d overflows", n);
    double *b = malloc(nn * sizeof *b);
    double *tau = malloc((size_t)n * sizeof *tau);
    if (!b || !tau) {
        free(b);
        free(tau);
        return ee_err_set(err, "random orthogonal: out of memory for %dx%d", n, n);
    }

    /* A (n x n, drawn row-major) is stored transposed: row j of b is column
     * j of A, so every Householder operation runs on contiguous memory. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) b[(size_t)j * n + i] = ee_stream_gauss(s);

    /* Householder QR (LAPACK dgeqr2 conventions: v(0) = 1 implicit, the rest
     * of v overwrites column k below the diagonal, R_kk on the diagonal).
     * Column j receives H_0, H_1, ... in order whatever the blocking, so the
     * panel loop only changes cache behaviour, never the bits. */
    for (int k0 = 0; k0 < n; k0 += QR_NB) {
        int k1 = k0 + QR_NB < n ? k0 + QR_NB : n;
        for (int k = k0; k < k1; k++) {
            double *x = b + (size_t)k * n + k;
            int m = n - k;
            double alpha = x[0];
            double sigma2 = dot8(x + 1, x + 1, m - 1);
            if (sigma2 == 0.0) {
                tau[k] = 0.0; /* already upper triangular: H = I, R_kk = alpha */
            } else {
                double norm = sqrt(alpha * alpha + sigma2);
                double beta = alpha >= 0 ? -norm : norm;
                tau[k] = (beta - alpha) / beta;
                double sc = 1.0 / (alpha - beta);
                for (int i = 1; i < m; i++) x[i] *= sc;
                x[0] = beta;
            }
            for (int j = k + 1; j < k1; j++)
                apply_reflector(x + 1, tau[k], b + (size_t)j * n + k, m);
        }
        for (int j = k1; j < n; j++) {
            double *col = b + (size_t)j * n;
            for (int k = k0; k < k1; k++)
                apply_reflector(b + (size_t)k * n + k + 1, tau[k], col + k, n - k);
        }
    }

    /* Q e_j = H_0 H_1 ... H_{n-1} e_j; H_k with k > j leaves e_j alone.
     * Column j of Q goes to row j of q (transposed below). Columns are
     * processed in blocks so each reflector is read once per block; the
     * order of reflectors applied to one column is always j, j-1, ..., 0. */
    for (int j0 = 0; j0 < n; j0 += QR_NB) {
        int j1 = j0 + QR_NB < n ? j0 + QR_NB : n;
        for (int j = j0; j < j1; j++) {
            double *col = q + (size_t)j * n;
            memset(col, 0, (size_t)n * sizeof *col);
            col[j] = 1.0;
        }
        for (int k = j1 - 1; k >= 0; k--) {
            const double *v1 = b + (size_t)k * n + k + 1;
            for (int j = k > j0 ? k : j0; j < j1; j++)
                apply_reflector(v1, tau[k], q + (size_t)j * n + k, n - k);
        }
    }

    /* Mezzadri's fix: A = (Q D)(D R) with D = diag(sign R_jj) makes R's
     * diagonal positive, and that Q D is Haar distributed. */
    for (int j = 0; j < n; j++) {
        if (b[(size_t)j * n + j] < 0) {
            double *col = q + (size_t)j * n;
            for (int i = 0; i < n; i++) col[i] = -col[i];
        }
    }
    /* Rows of q hold columns of Q: transpose in place to row-major Q. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double t = q[(size_t)i * n + j];
            q[(size_t)i * n + j] = q[(size_t)j * n + i];
            q[(size_t)j * n + i] = t;
        }

    free(b);
    free(tau);
    return 0;
}
