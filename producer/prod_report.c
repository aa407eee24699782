#include "prod_report.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int prod_report_mkdir(const char *dir, ee_err *err) {
    if (mkdir(dir, 0755) == 0) return 0;
    struct stat st;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return ee_err_set(err, "--report: cannot create directory '%s': %s", dir,
                      errno == EEXIST ? "a file of that name exists" : strerror(errno));
}

int prod_report_path(char *buf, size_t cap, const char *dir, const char *name, ee_err *err) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return ee_err_set(err, "--report: path too long: '%s'", dir);
    return 0;
}

int prod_report_write_json(const char *path, const json_t *o, ee_err *err) {
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return ee_err_set(err, "path too long: '%s'", path);
    if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)))
        return ee_err_set(err, "--report: cannot write '%s'", tmp);
    if (rename(tmp, path))
        return ee_err_set(err, "--report: cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
    return 0;
}

/* The source tree this binary was built in: <exe>/../.. */
static int tree_root(char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *d = dirname(exe); /* .../build/bin */
    int k = snprintf(buf, cap, "%s/../..", d);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}

int prod_report_plot(const char *dir, const char *records, const char *summary, ee_err *err) {
    char root[PATH_MAX] = "", script[PATH_MAX], py[PATH_MAX];
    bool have_root = tree_root(root, sizeof root) == 0;
    const char *s = getenv("EE_LOAD_REPORT"), *p = getenv("EE_PYTHON");
    if (s && *s)
        snprintf(script, sizeof script, "%s", s);
    else if (have_root)
        snprintf(script, sizeof script, "%s/bench/load_report.py", root);
    else
        script[0] = 0;
    if (!script[0] || access(script, R_OK))
        return ee_err_set(err, "--report: plots not drawn: the plotter '%s' is not there (set "
                               "EE_LOAD_REPORT to bench/load_report.py); records and summary.json "
                               "are in %s", script[0] ? script : "bench/load_report.py", dir);
    if (p && *p)
        snprintf(py, sizeof py, "%s", p);
    else if (have_root && snprintf(py, sizeof py, "%s/.cache/venv/bin/python", root) > 0 &&
             access(py, X_OK) == 0)
        ;
    else
        snprintf(py, sizeof py, "python3");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return ee_err_set(err, "--report: fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(2, 1); /* stdout stays the summary */
        execlp(py, py, script, "--records", records, "--summary", summary, "--out", dir,
               (char *)NULL);
        fprintf(stderr, "ee-producer load: --report: cannot run '%s': %s\n", py, strerror(errno));
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return ee_err_set(err, "--report: waitpid: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    return ee_err_set(err, "--report: plots not drawn: '%s %s' %s %d (is matplotlib installed? "
                           "make venv; or set EE_PYTHON); records and summary.json are in %s",
                      py, script, WIFEXITED(st) ? "exited" : "killed by signal",
                      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), dir);
}
