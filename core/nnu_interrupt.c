/* nnu_interrupt.c: see nnu_interrupt.h. */
#include "nnu_interrupt.h"

#include <stdatomic.h>

static atomic_int requested;   /* lock-free int: safe to store from a signal handler */

void nnu_interrupt_request(void) { atomic_store(&requested, 1); }
int  nnu_interrupt_requested(void) { return atomic_load(&requested); }
void nnu_interrupt_clear(void) { atomic_store(&requested, 0); }
