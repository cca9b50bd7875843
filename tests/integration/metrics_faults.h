/* metrics_faults: /metrics across process deaths (in tollgate-usage-faults). */
#ifndef TOLLGATE_METRICS_FAULTS_H
#define TOLLGATE_METRICS_FAULTS_H

#include <CUnit/CUnit.h>

void metrics_faults_add(CU_pSuite s);

#endif
