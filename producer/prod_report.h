/* prod_report: `ee-producer load --report DIR`. The producer writes
 * DIR/records.jsonl (unless --records names another file) and
 * DIR/summary.json (the --json summary object) itself, then runs the
 * plotter, bench/load_report.py (matplotlib), which draws the PNGs and
 * DIR/index.md from those two files. The plotter is found as
 * $EE_LOAD_REPORT, else <dir of ee-producer>/../../bench/load_report.py
 * (the source tree); Python as $EE_PYTHON, else .cache/venv/bin/python
 * of that tree, else python3 on PATH. Without either the records and
 * summary stay and the error names what is missing and how to draw the
 * plots later. */
#ifndef PROD_REPORT_H
#define PROD_REPORT_H

#include "ee_error.h"

#include <jansson.h>
#include <stddef.h>

/* Creates DIR if missing (its parent must exist). */
int prod_report_mkdir(const char *dir, ee_err *err);
/* DIR/NAME into buf; -1 with err if it does not fit. */
int prod_report_path(char *buf, size_t cap, const char *dir, const char *name, ee_err *err);
/* Writes o to path (via path.tmp and rename). */
int prod_report_write_json(const char *path, const json_t *o, ee_err *err);
/* Runs the plotter on records and summary into dir, its output on stderr. */
int prod_report_plot(const char *dir, const char *records, const char *summary, ee_err *err);

#endif
