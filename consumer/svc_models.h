/* svc_models: the served models. */
#ifndef EE_SVC_MODELS_H
#define EE_SVC_MODELS_H

#include "svc.h"

int svc_models_open(svc *s, ee_err *err);
void svc_models_close(svc *s);

#endif
