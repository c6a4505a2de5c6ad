/* nnu_interrupt: a process-wide "stop requested" flag.
 * The host's SIGINT handler sets it; long core loops (fingerprint, preprocessing,
 * training steps) poll it between work items and return NNU_STATUS_ERR_INTERRUPTED,
 * so that Lua sees an "interrupted" error and a recipe can save its state. */
#ifndef NNU_INTERRUPT_H
#define NNU_INTERRUPT_H

void nnu_interrupt_request(void);   /* async-signal-safe */
int  nnu_interrupt_requested(void);
void nnu_interrupt_clear(void);

#endif
