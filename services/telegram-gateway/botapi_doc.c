/*
 * botapi_doc — sendDocument as multipart/form-data. The outbox keeps every
 * call as a JSON body; a document's body names the file inline:
 *   {"chat_id": …, "caption": …, "parse_mode": …,
 *    "document": {"filename": "INC-3-postmortem.md", "content": "…"}}
 * and this turns it into the upload Telegram expects (a file part named
 * "document", the other members as plain fields).
 */
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "gateway.h"

curl_mime *
gw_botapi_document_mime(void *h, const char *body)
{
	cJSON *j = cJSON_Parse(body ? body : "");
	curl_mime *mime = NULL;
	const cJSON *it;

	if (j == NULL) {
		return NULL;
	}
	if ((mime = curl_mime_init(h)) == NULL) {
		cJSON_Delete(j);
		return NULL;
	}
	cJSON_ArrayForEach(it, j)
	{
		curl_mimepart *p = curl_mime_addpart(mime);
		if (p == NULL) {
			continue;
		}
		curl_mime_name(p, it->string);
		if (strcmp(it->string, "document") == 0
		    && cJSON_IsObject(it)) {
			const cJSON *fn
			    = cJSON_GetObjectItemCaseSensitive(it, "filename");
			const cJSON *ct
			    = cJSON_GetObjectItemCaseSensitive(it, "content");
			const char *c
			    = cJSON_IsString(ct) ? ct->valuestring : "";
			curl_mime_data(p, c, strlen(c));
			curl_mime_filename(p,
			    cJSON_IsString(fn) ? fn->valuestring
			                       : "document.txt");
			curl_mime_type(p, "text/markdown");
		} else if (cJSON_IsString(it)) {
			curl_mime_data(
			    p, it->valuestring, CURL_ZERO_TERMINATED);
		} else {
			char *v = cJSON_PrintUnformatted(it);
			curl_mime_data(p, v ? v : "", CURL_ZERO_TERMINATED);
			cJSON_free(v);
		}
	}
	cJSON_Delete(j);
	return mime;
}
