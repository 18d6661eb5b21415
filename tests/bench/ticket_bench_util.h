/*
 * ticket_bench_util — what ticket_bench and ticket_pages share: the one
 * create request both send, and the /proc/self/io counters they read.
 */
#ifndef OPSDESK_TICKET_BENCH_UTIL_H
#define OPSDESK_TICKET_BENCH_UTIL_H

#include <stdint.h>

#include "rpc/rpc.h"

/* One create by user uid (a new user each time in the benches); *ns, when
 * not NULL, gets the round trip. 0, an od_err, or OD_ERPC for an Error
 * reply. */
int bench_create_ticket(rpc_client *c, long long uid, uint64_t *ns);

/*
 * A counter of /proc/self/io, -1 if unknown. "wchar" is what this process
 * handed to write()/pwrite() (LMDB's pages; NNG sends with sendmsg, which
 * is not counted); "write_bytes" is what the kernel charged to storage,
 * on this kernel a whole page-cache folio per 4 KiB page (about 3x).
 */
long long bench_io_counter(const char *name);

#endif
