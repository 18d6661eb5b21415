/*
 * faq.c — matching FAQ entries against the words a user typed. The FAQ is
 * small (at most TICKET_MAX_FAQ entries), so a search reads it whole; the
 * ranking is what matters: question words beat tags beat the answer.
 */
#include <ctype.h>
#include <string.h>

#include "ticket.h"
#include "util/util.h"

#define WORD_MAX 64

static int
word_score(const Opsdesk__V1__FaqEntry *e, const char *word)
{
	if (od_contains_ci(e->question, word)) {
		return 3;
	}
	for (size_t i = 0; i < e->n_tags; i++) {
		if (od_contains_ci(e->tags[i], word)) {
			return 2;
		}
	}
	if (od_contains_ci(e->answer, word)) {
		return 1;
	}
	return 0;
}

int
ticket_faq_score(const Opsdesk__V1__FaqEntry *e, const char *query)
{
	char word[WORD_MAX];
	int score = 0;
	const char *p = query != NULL ? query : "";

	for (;;) {
		size_t n = 0;
		/* Words are runs of letters, digits and any non-ASCII byte,
		 * so "вход" and "2fa" are words and punctuation is not. */
		while (*p != '\0' && !isalnum((unsigned char) *p)
		    && !((unsigned char) *p & 0x80)) {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		while (*p != '\0'
		    && (isalnum((unsigned char) *p)
		        || ((unsigned char) *p & 0x80))) {
			if (n < WORD_MAX - 1) {
				word[n++] = *p;
			}
			p++;
		}
		word[n] = '\0';
		if (n >= 2) {
			score += word_score(e, word);
		}
	}
	return score;
}
