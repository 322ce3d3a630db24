/* The clock of every event memscope's C code writes: the one time.perf_counter_ns()
 * reads, so rows made in C and rows made in Python order on one line. One definition,
 * included by each extension that stamps rows (_hotpath.c, _deathwatch.c). */
#ifndef MEMSCOPE_CLOCK_H
#define MEMSCOPE_CLOCK_H

#include <Python.h>
#include <stdint.h>

static inline int64_t
memscope_now_ns(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t = 0;
    (void)PyTime_PerfCounterRaw(&t);
    return (int64_t)t;
#else
    return (int64_t)_PyTime_GetPerfCounter();
#endif
}

#endif
