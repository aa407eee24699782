/* svc_infer: the inference thread. */
#ifndef EE_SVC_INFER_H
#define EE_SVC_INFER_H

#include "svc.h"

int svc_infer_start(svc *s, ee_err *err);
void svc_infer_stop(svc *s);

#endif
