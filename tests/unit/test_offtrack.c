/* ee_offtrack: commit positions advance only over the contiguous finished
 * prefix; stale generations after a drop are ignored; a randomized check
 * against a brute-force model. */
#include "ee_offtrack.h"
#include "ee_testmodel.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

START_TEST(prefix_only) {
    ee_offtrack *t = ee_offtrack_new();
    uint64_t g = ee_offtrack_add(t, 0, "a", 1, 10);
    ck_assert_uint_ne(g, 0);
    ck_assert_uint_eq(ee_offtrack_add(t, 0, "a", 1, 11), g);
    ck_assert_uint_eq(ee_offtrack_add(t, 0, "a", 1, 13), g); /* gaps are fine */
    ck_assert_uint_eq(ee_offtrack_add(t, 0, "a", 1, 13), 0); /* not increasing */
    ck_assert_uint_eq(ee_offtrack_add(t, 0, "a", 1, 12), 0);
    uint64_t g2 = ee_offtrack_add(t, 0, "a", 2, 10);          /* another partition */
    ck_assert_uint_ne(g2, g);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 1, 11, g), -1); /* 10 still running */
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 1, 11, g), -2); /* twice */
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 1, 12, g), -2); /* never polled */
    ck_assert_uint_eq(ee_offtrack_pending(t, 0, "a", 1), 3);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 1, 10, g), 12);  /* 10, 11 done */
    ck_assert_uint_eq(ee_offtrack_pending(t, 0, "a", 1), 1);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 1, 13, g), 14);
    ck_assert_uint_eq(ee_offtrack_pending_total(t), 1);
    /* other consumer index, same topic/partition: separate */
    ck_assert_int_eq(ee_offtrack_done(t, 1, "a", 2, 10, g2), -2);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 2, 10, g2), 11);
    ee_offtrack_free(t);
}
END_TEST

START_TEST(drop_and_generation) {
    ee_offtrack *t = ee_offtrack_new();
    uint64_t g = ee_offtrack_add(t, 0, "a", 0, 5);
    ee_offtrack_drop(t, 0, "a", 0);
    ck_assert_uint_eq(ee_offtrack_pending(t, 0, "a", 0), 0);
    /* redelivered after a rebalance: same offset, new generation */
    uint64_t g2 = ee_offtrack_add(t, 0, "a", 0, 5);
    ck_assert_uint_ne(g2, g);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 0, 5, g), -2); /* late, stale */
    ck_assert_uint_eq(ee_offtrack_pending(t, 0, "a", 0), 1);
    ck_assert_int_eq(ee_offtrack_done(t, 0, "a", 0, 5, g2), 6);
    ee_offtrack_drop(t, 3, "nope", 9); /* unknown: no-op */
    ee_offtrack_free(t);
}
END_TEST

/* Random completion orders over a long stream (ring wrap and growth) vs a
 * brute-force model of "first unfinished offset". */
START_TEST(random_against_model) {
    uint64_t st = 12345;
    for (int round = 0; round < 20; round++) {
        ee_offtrack *t = ee_offtrack_new();
        enum { N = 600 };
        int64_t off[N];
        bool done[N] = {false};
        int64_t o = (int64_t)(ee_test_splitmix64(&st) % 1000);
        uint64_t g = 0;
        int added = 0, finished = 0;
        int64_t committed = -1;
        while (finished < N) {
            bool add = added < N && (added == finished || ee_test_splitmix64(&st) % 3 != 0);
            if (add) {
                o += 1 + (int64_t)(ee_test_splitmix64(&st) % 3);
                off[added] = o;
                uint64_t gg = ee_offtrack_add(t, 0, "t", 0, o);
                ck_assert_uint_ne(gg, 0);
                if (!g) g = gg;
                ck_assert_uint_eq(gg, g);
                added++;
                continue;
            }
            /* finish a random unfinished one among those added */
            int k;
            do k = (int)(ee_test_splitmix64(&st) % (uint64_t)added);
            while (done[k]);
            done[k] = true;
            finished++;
            int64_t r = ee_offtrack_done(t, 0, "t", 0, off[k], g);
            int first = 0;
            while (first < added && done[first]) first++;
            int64_t want = first == 0 ? -1 : off[first - 1] + 1;
            if (want != committed) {
                ck_assert_int_eq(r, want);
                committed = want;
            } else {
                ck_assert_int_eq(r, -1);
            }
            ck_assert_uint_eq(ee_offtrack_pending(t, 0, "t", 0), (size_t)(added - first));
        }
        ee_offtrack_free(t);
    }
}
END_TEST

Suite *suite_offtrack(void) {
    Suite *s = suite_create("offtrack");
    TCase *tc = tcase_create("offtrack");
    tcase_add_test(tc, prefix_only);
    tcase_add_test(tc, drop_and_generation);
    tcase_add_test(tc, random_against_model);
    suite_add_tcase(s, tc);
    return s;
}
