/* svc_index: blind indexes, loaded from and following their compacted
 * topics; searched by search jobs. */
#ifndef EE_SVC_INDEX_H
#define EE_SVC_INDEX_H

#include "svc.h"

/* Open every configured index: create its topic if missing, read it to the
 * end (before the worker takes jobs). Poll thread, at start. */
int svc_index_open(svc *s, ee_err *err);
void svc_index_close(svc *s);
/* Apply the records that arrived (poll thread, each round). */
void svc_index_poll(svc *s);
svc_index *svc_index_find(svc *s, const char *name);
/* The k best documents for an encrypted query vector (ix->dim floats):
 * hits malloc'd (ids and sealed docs copied), best first. Any thread. */
int svc_index_search(svc_index *ix, const float *query, int k, ee_proto_hit **hits, size_t *n_hits,
                     ee_err *err);

#endif
