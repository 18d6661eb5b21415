/*
 * callbacks — inline button data. The data comes back from the client and
 * can be forged, so it is only ever a compact, versioned name of a
 * command: "1:<action>[:<arg>[:<arg>]]". Each action is expanded into the
 * command line a user could type ("ia:42" -> "/incident ack 42") and run
 * through the router with the presser's own identity, so a forged button
 * can do nothing that the same user could not do by typing — the admin
 * check in the router and the service's own check apply unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"

static bool
cb_arg_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) >= 32) {
		return false;
	}
	for (; *s != '\0'; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		        || (c >= '0' && c <= '9') || c == '_' || c == '-'
		        || c == '.')) {
			return false;
		}
	}
	return true;
}

int
gw_cb_encode(
    char *out, size_t size, const char *action, const char *a1, const char *a2)
{
	if (!cb_arg_ok(action) || (a1 != NULL && !cb_arg_ok(a1))
	    || (a2 != NULL && !cb_arg_ok(a2)) || (a1 == NULL && a2 != NULL)) {
		return OD_EINVAL;
	}
	int n = snprintf(out, size, "%s:%s%s%s%s%s", CB_VERSION, action,
	    a1 ? ":" : "", a1 ? a1 : "", a2 ? ":" : "", a2 ? a2 : "");
	if (n < 0 || (size_t) n >= size || n > GW_CBDATA_MAX) {
		return OD_ETOOBIG;
	}
	return 0;
}

int
gw_cb_decode(const char *data, cb_data *out)
{
	char buf[GW_CBDATA_MAX + 1];
	char *parts[4];
	int n = 0;

	if (data == NULL || strlen(data) > GW_CBDATA_MAX) {
		return OD_EINVAL;
	}
	od_strlcpy(buf, data, sizeof(buf));
	for (char *p = buf, *tok; n < 4 && (tok = strsep(&p, ":")) != NULL;) {
		parts[n++] = tok;
		if (p != NULL && n == 4) {
			return OD_EINVAL; /* too many fields */
		}
	}
	if (n < 2) {
		return OD_EINVAL;
	}
	if (strcmp(parts[0], CB_VERSION) != 0) {
		return OD_ESTATE;
	}
	for (int i = 1; i < n; i++) {
		if (!cb_arg_ok(parts[i])) {
			return OD_EINVAL;
		}
	}
	cb_data d;
	memset(&d, 0, sizeof(d));
	if (strlen(parts[1]) >= sizeof(d.action)) {
		return OD_EINVAL;
	}
	od_strlcpy(d.action, parts[1], sizeof(d.action));
	d.nargs = n - 2;
	if (n > 2) {
		od_strlcpy(d.arg1, parts[2], sizeof(d.arg1));
	}
	if (n > 3) {
		od_strlcpy(d.arg2, parts[3], sizeof(d.arg2));
	}
	*out = d;
	return 0;
}

/*
 * The buttons. `edit` marks navigation and Refresh: the answer replaces
 * the pressed message instead of adding one.
 */
static const struct cb_action {
	const char *code;
	const char *command;
	bool edit;
} cb_actions[] = {
	{ "h", "/help", true },
	{ "ho", "/help_operations", true },
	{ "ha", "/help_admin", true },
	{ "su", "/support", true },
	{ "st", "/status", true },
	{ "sb", "/subscribe", false },
	{ "us", "/unsubscribe", false },
	{ "nt", "/newticket", false },
	{ "tl", "/tickets", false },
	{ "tv", "/ticket", false },
	{ "tm", "/addmsg", false },
	{ "tr", "/rate", false },
	{ "rs", "/rate", false }, /* + "-": rate without a comment */
	{ "fq", "/faq", false },
	{ "ct", "/contact", false },
	{ "hl", "/health", true },
	{ "mo", "/monitor", true },
	{ "op", "/ops", true },
	{ "ck", "/tick", true },
	{ "im", "/incident", true },
	{ "il", "/incident list", false },
	{ "ila", "/incident list all", false },
	{ "is", "/incident show", false },
	{ "ia", "/incident ack", true }, /* the alert changes in place */
	{ "ir", "/incident resolve", true },
	{ "q", "/queue", false },
	{ "mt", "/maintenance", false },
	{ "rp", "/report", false },
	{ "cx", "/cancel", true },
	{ "ip", "/incident postmortem", false },
	{ "ipm", "/incident postmortem", false }, /* + " md": the document */
	{ "oy", "/offer yes", true },
	{ "on", "/offer new", true },
	/* + target id: an incident for an error budget burn alert */
	{ "isp", "/incident new high Error budget burning fast:", false },
	{ "isw", "/incident new medium Error budget burning:", false },
};

int
gw_cb_dispatch(gw_ctx *ctx, const char *data)
{
	cb_data d;
	int rv = gw_cb_decode(data, &d);
	if (rv == OD_ESTATE) {
		gw_ctx_answer(
		    ctx, "This button has expired. Send /help.", true);
		return 0;
	}
	if (rv != 0) {
		gw_ctx_answer(ctx, "Unknown button.", true);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cb_actions) / sizeof(cb_actions[0]);
	     i++) {
		const struct cb_action *a = &cb_actions[i];
		if (strcmp(a->code, d.action) != 0) {
			continue;
		}
		char line[128];
		snprintf(line, sizeof(line), "%s%s%s%s%s%s", a->command,
		    d.nargs > 0 ? " " : "", d.nargs > 0 ? d.arg1 : "",
		    d.nargs > 1 ? " " : "", d.nargs > 1 ? d.arg2 : "",
		    strcmp(a->code, "rs") == 0        ? " -"
		        : strcmp(a->code, "ipm") == 0 ? " md"
		                                      : "");
		ctx->edit
		    = a->edit && ctx->u != NULL && ctx->u->message_id != 0;
		return gw_router_dispatch(ctx, line);
	}
	gw_ctx_answer(ctx, "Unknown button.", true);
	return 0;
}
