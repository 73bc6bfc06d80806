# mk/fuzz.mk: `make fuzz`, a time-boxed libFuzzer campaign.  Included by the
# top Makefile.
#
#   make fuzz                          every target, FUZZ_SECS (30) seconds each
#   make fuzz FUZZ_SECS=300 FUZZ_TARGETS="fuzz_dns fuzz_smtp"
#
# tests/fuzz/run.sh builds the targets into build-fuzz/ (clang,
# -fsanitize=fuzzer,address,undefined; needs clang and libclang-rt-*-dev),
# runs them one after the other on one core, keeps what they find in
# build-fuzz/corpus/ and crash inputs in build-fuzz/crashes/, and exits 1
# when a target crashed, broke an invariant or failed to build; so does make.
# Total time is bounded: FUZZ_SECS per target (10 targets with the _small
# builds: 5 min at the default) plus the build.  FUZZ_TARGETS names binaries
# in build-fuzz/ (fuzz_data, fuzz_data_small, ...); empty: all of them.
# libFuzzer's own per-input timeout (10 s) turns a hang into a failure too.
FUZZ_SECS    ?= 30
FUZZ_TARGETS ?=
FUZZ_MAX_LEN ?= 4096

# (env -u: build.sh reads FUZZ_TARGETS as source names, without _small)
fuzz: build/config.h
	env -u FUZZ_TARGETS FUZZ_SECS=$(FUZZ_SECS) FUZZ_MAX_LEN=$(FUZZ_MAX_LEN) tests/fuzz/run.sh $(FUZZ_TARGETS)

# The committed seeds only, gcc + ASan, no clang (what `make test` runs).
fuzz-replay: build/config.h
	tests/fuzz/replay.sh

.PHONY: fuzz fuzz-replay
