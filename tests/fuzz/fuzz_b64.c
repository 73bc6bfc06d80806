/* fuzz_b64.c: b64_decode / b64_encode (src/util.c), for SASL payloads.
 *
 * Input: one byte choosing the output room (0..255), then the text.
 * b64_decode must return -1 or a length within the room (the buffer is
 * exactly that big), the length 3/4 of the text minus padding; encoding
 * the bytes again gives text that decodes to the same bytes, and equals
 * the input whenever the input was canonical.  b64_encode into a smaller
 * buffer truncates whole quanta and always terminates the string. */
#include "kotak.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, n, enc_max, i;
	unsigned char *out, *out2;
	char *in, *enc, *small;
	int r, r2;

	if (size < 1 || size > 4096)
		return 0;
	max = data[0];
	n = size - 1;
	in = malloc(n + 1);
	FZ_ASSERT(in != NULL);
	memcpy(in, data + 1, n);
	in[n] = '\0';
	out = malloc(max ? max : 1);
	FZ_ASSERT(out != NULL);
	r = b64_decode(in, out, max);
	FZ_ASSERT(r >= -1 && r <= (int)max);
	if (r >= 0) {
		n = strlen(in);
		FZ_ASSERT(n % 4 == 0);
		FZ_ASSERT((size_t)r == n / 4 * 3 - (n && in[n - 1] == '=') - (n > 1 && in[n - 2] == '='));
		enc_max = ((size_t)r + 2) / 3 * 4 + 1;
		enc = malloc(enc_max);
		FZ_ASSERT(enc != NULL);
		b64_encode(out, (size_t)r, enc, enc_max);
		FZ_ASSERT(strlen(enc) == n);
		out2 = malloc(r ? (size_t)r : 1);
		FZ_ASSERT(out2 != NULL);
		r2 = b64_decode(enc, out2, (size_t)r);
		FZ_ASSERT(r2 == r && !memcmp(out, out2, (size_t)r));
		free(out2);
		/* canonical input (the spare bits of the last quantum zero) encodes back to itself */
		if (strcmp(enc, in)) {
			FZ_ASSERT(n >= 4 && in[n - 1] == '=');
			FZ_ASSERT(!memcmp(enc, in, n - 4 + 1));
		}
		free(enc);
		/* a short buffer: whole quanta only, terminated */
		for (i = 1; i < enc_max && i < 12; i++) {
			small = malloc(i);
			FZ_ASSERT(small != NULL);
			b64_encode(out, (size_t)r, small, i);
			FZ_ASSERT(strnlen(small, i) < i && strlen(small) % 4 == 0);
			free(small);
		}
	}
	free(out);
	free(in);
	return 0;
}
