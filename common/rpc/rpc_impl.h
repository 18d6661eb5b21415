/*
 * Internals shared by the files of the rpc module and its tests and fuzz
 * target (not a public face: services use rpc.h only).
 */
#ifndef OPSDESK_RPC_IMPL_H
#define OPSDESK_RPC_IMPL_H

#include "rpc.h"

/*
 * A server without sockets: the decode/dispatch path of rpc_server_start
 * with the same checks of opt (url may be NULL). Free with
 * rpc_server_stop.
 */
int rpc__server_create(rpc_server **out, const rpc_server_options *opt);

/*
 * Answer one request synchronously on the calling thread (writes wait for
 * their commit) exactly as a socket request would be answered. *out is
 * the packed reply; caller frees with free().
 */
int rpc__server_handle(rpc_server *s, const void *req, size_t len,
    uint8_t **out, size_t *out_len);

#endif /* OPSDESK_RPC_IMPL_H */
