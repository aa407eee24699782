/* ee-devbroker (development-only mock cluster): a real client (kcat) in
 * another process produces a record with a key and a header and reads it
 * back; SIGTERM stops the broker with exit 0 and removes its bootstrap file. */
#include "ee_testmodel.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(kcat_round_trip_and_clean_stop) {
    char *dir = ee_test_mkdtemp("devbroker");
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "set -e; d=%s; %s/ee-devbroker --topic t.x:2 --bootstrap-file $d/b >/dev/null 2>$d/log & "
             "pid=$!; for i in $(seq 100); do [ -s $d/b ] && break; sleep 0.05; done; "
             "b=$(cat $d/b); printf 'hello' | kcat -P -b $b -t t.x -p 1 -k job-1 -H ee-id=job-1; "
             "out=$(kcat -C -b $b -t t.x -p 1 -o beginning -e -c 1 -f '%%k|%%h|%%s'); "
             "kill -TERM $pid; rc=0; wait $pid || rc=$?; "
             "[ -e $d/b ] && echo 'bootstrap file left behind'; echo \"$out rc=$rc\"",
             dir, ee_test_bindir());
    int st = ee_test_run(cmd, &out, &err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    ck_assert_msg(strcmp(out, "job-1|ee-id=job-1|hello rc=0\n") == 0, "got '%s' (stderr %s)", out, err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s/ee-devbroker --brokers 0", ee_test_bindir());
    ck_assert_int_ne(ee_test_run(cmd, NULL, &err), 0);
    ck_assert_msg(strstr(err, "--brokers"), "%s", err);
    free(err);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

Suite *suite_devbroker(void) {
    Suite *s = suite_create("devbroker");
    TCase *tc = tcase_create("mock");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, kcat_round_trip_and_clean_stop);
    suite_add_tcase(s, tc);
    return s;
}
