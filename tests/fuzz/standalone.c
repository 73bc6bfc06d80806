/* standalone.c: main() for building a fuzz target without libFuzzer (gcc +
 * ASan): runs LLVMFuzzerTestOneInput once over each file named on the
 * command line (a directory: over each regular file in it).  Exit 0 when
 * every input ran; a sanitizer report or abort() in a target ends the run.
 * Prints "N passed, 0 failed" so tests/all.sh can sum it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

static int nrun;

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	size_t n = 0, cap = 0, r;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			if ((b = realloc(b, cap)) == NULL) {
				perror("realloc");
				exit(2);
			}
		}
		if ((r = fread(b + n, 1, cap - n, f)) == 0)
			break;
		n += r;
	}
	fclose(f);
	/* an exact-size copy, so ASan sees reads past the input's end */
	{
		unsigned char *e = malloc(n ? n : 1);
		if (e == NULL)
			exit(2);
		memcpy(e, b, n);
		free(b);
		LLVMFuzzerTestOneInput(e, n);
		free(e);
	}
	nrun++;
	return 0;
}

int
main(int argc, char **argv)
{
	int i, bad = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			char p[4096];
			if (d == NULL) {
				perror(argv[i]);
				bad++;
				continue;
			}
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
				if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && run_file(p) < 0)
					bad++;
			}
			closedir(d);
		} else if (run_file(argv[i]) < 0) {
			bad++;
		}
	}
	printf("%s: %d inputs ran, %d unreadable\n", argv[0], nrun, bad);
	return bad != 0;
}
