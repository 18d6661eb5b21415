/*
 * od_nng_err — one mapping from NNG's error codes to od_err, for every
 * module that talks to NNG (bus, rpc). See util.h.
 */
#include <nng/nng.h>

#include "util.h"

int
od_nng_err(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return OD_ENOMEM;
	case NNG_ECLOSED:
		return OD_ECLOSED;
	case NNG_ETIMEDOUT:
		return OD_ETIMEDOUT;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP: /* an unknown URL scheme */
		return OD_EINVAL;
	case NNG_EADDRINUSE:
		return OD_EEXIST;
	case NNG_EMSGSIZE:
		return OD_ETOOBIG;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
		return OD_EUNAVAIL;
	default:
		return OD_EIO;
	}
}
