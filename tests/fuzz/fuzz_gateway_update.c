/*
 * telegram-gateway's outside input: any bytes as a Bot API update (from
 * getUpdates or the webhook) through gw_update_parse and the inbox round
 * trip; the same bytes as callback data and as text through escaping and
 * the 4096 split, whose parts must stay within the limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';

	cJSON *j = cJSON_ParseWithLength((const char *) data, size);
	gw_update u;
	if (j != NULL && gw_update_parse(j, &u) == 0) {
		char *json = gw_update_to_json(&u);
		cJSON *again = json ? cJSON_Parse(json) : NULL;
		gw_update u2;
		if (again != NULL && gw_update_parse(again, &u2) == 0) {
			if (u2.update_id != u.update_id
			    || u2.chat_id != u.chat_id) {
				abort();
			}
			gw_update_clear(&u2);
		}
		cJSON_Delete(again);
		free(json);
		gw_update_clear(&u);
	}
	cJSON_Delete(j);

	cb_data d;
	(void) gw_cb_decode(text, &d);
	char name[40];
	const char *args;
	(void) gw_router_parse(text, "opsdesk_bot", name, sizeof(name), &args);

	sbuf b = SBUF_INIT;
	gw_render_text(&b, text, 0);
	char **parts = NULL;
	size_t n = 0;
	if (!sbuf_failed(&b)
	    && gw_render_split(sbuf_str(&b), 300, &parts, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			char *plain = gw_render_to_plain(parts[i]);
			if (plain != NULL
			    && gw_render_tg_len(plain, strlen(plain)) > 300) {
				abort();
			}
			free(plain);
		}
		gw_render_parts_free(parts, n);
	}
	sbuf_free(&b);
	free(text);
	return 0;
}
