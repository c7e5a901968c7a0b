# mtgrad — build knobs first. `make` builds the libraries and the CLI; `make test` runs every test;
# `make run` runs the main job; `make install PREFIX=...` installs.
CC        ?= cc
OPT       ?= -O2
OPENMP    ?= 1            # 0: build without OpenMP (results are identical, only slower)
SANITIZER ?=              # address | undefined | thread | address,undefined
DEBUG     ?= 0
PREFIX    ?= /usr/local
GOLDEN    ?= ../shared/golden
BUILD     ?= build

WARN   := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes
ifneq ($(CI),)
WARN   += -Werror          # CI treats every warning as an error
endif
CFLAGS ?= $(OPT)
ifeq ($(DEBUG),1)
CFLAGS := -O0 -g
endif
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) -fPIC -Iinclude -Isrc/core -Isrc
LDLIBS := -lm
# The engine (src/nn, src/data, src/eval) and the CLI also need OpenBLAS, zlib and cJSON.
NN_LIBS := -lopenblas -lz -lcjson
ifeq ($(strip $(OPENMP)),1)
ALL_CFLAGS += -fopenmp
LDLIBS     += -fopenmp
endif
ifneq ($(strip $(SANITIZER)),)
ALL_CFLAGS += -fsanitize=$(strip $(SANITIZER)) -fno-sanitize-recover=all -fno-omit-frame-pointer -g
LDLIBS     += -fsanitize=$(strip $(SANITIZER))
endif
# ThreadSanitizer only understands OpenMP through LLVM's libomp, whose Archer tool (libarcher.so,
# loaded by libomp when the program is built with TSan) reports its barriers and locks; GCC's
# libgomp does not, and a gcc TSan build reports races that are not there. So SANITIZER=thread
# builds with clang unless CC is given. The options: ignore accesses inside uninstrumented
# libraries (libomp's own spin-waits, OpenBLAS; races between them and our code cannot be seen
# anyway), let a deliberately huge malloc in the tests return NULL as libc's does, and stop at
# the first report with exit status 66. No suppressions are needed.
ifeq ($(strip $(SANITIZER)),thread)
ifeq ($(origin CC),default)
CC := clang
endif
TSAN_OPTIONS ?= ignore_noninstrumented_modules=1:allocator_may_return_null=1:halt_on_error=1 \
                second_deadlock_stack=1
export TSAN_OPTIONS
endif

SOVER   := 0
VERSION := 0.1.0
LIB_A   := $(BUILD)/libmtgrad.a
LIB_SO  := $(BUILD)/libmtgrad.so.$(VERSION)
LIB_NN  := $(BUILD)/libmtgrad_nn.a
CLI     := $(BUILD)/mtgrad

CORE_SRC  := $(wildcard src/core/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
NN_SRC    := $(wildcard src/nn/*.c src/data/*.c src/eval/*.c)
NN_OBJ    := $(NN_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC  := $(wildcard tools/*.c)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TOOLLIB_OBJ := $(filter-out $(BUILD)/tools/mtgrad.o,$(TOOL_OBJ))
TEST_SRC  := $(wildcard tests/unit/*.c tests/property/*.c)
TEST_BIN  := $(TEST_SRC:%.c=$(BUILD)/%)
TTEST_SRC := $(wildcard tests/tools/*.c)
TTEST_BIN := $(TTEST_SRC:%.c=$(BUILD)/%)
NTEST_SRC := $(wildcard tests/nn/*.c tests/data/*.c tests/eval/*.c)
NTEST_BIN := $(NTEST_SRC:%.c=$(BUILD)/%)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all test run install clean check-golden
all: $(LIB_A) $(LIB_SO) $(LIB_NN) $(CLI)

# Debian packages the CLI and tests need (cJSON, pkg-config), installed once if missing.
$(DEPS_STAMP): tools/deps.sh
	@mkdir -p $(dir $@)
	sh tools/deps.sh && touch $@

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h tools/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libmtgrad.so.$(SOVER) -o $@ $^ $(LDLIBS)
	ln -sf libmtgrad.so.$(VERSION) $(BUILD)/libmtgrad.so.$(SOVER)
	ln -sf libmtgrad.so.$(SOVER) $(BUILD)/libmtgrad.so

$(LIB_NN): $(NN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLI): $(TOOL_OBJ) $(LIB_NN) $(LIB_A)
	$(CC) -o $@ $(TOOL_OBJ) $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)

# Each test is one program; tests may include src/core/internal.h to reach the _ref kernels.
$(BUILD)/tests/%: tests/%.c tests/harness.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB_A) $(LDLIBS)

# Tests of the CLI's modules (parsers, readers) link the tools' objects without main().
$(BUILD)/tests/tools/%: tests/tools/%.c tests/harness.h $(TOOLLIB_OBJ) $(LIB_NN) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Itools -o $@ $< $(TOOLLIB_OBJ) $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)

# Engine tests (gradient checks, data, trainer) link the engine library.
$(BUILD)/tests/nn/%: tests/nn/%.c tests/harness.h $(wildcard tests/nn/*.h) $(LIB_NN) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)
$(BUILD)/tests/data/%: tests/data/%.c tests/harness.h $(LIB_NN) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)
$(BUILD)/tests/eval/%: tests/eval/%.c tests/harness.h $(wildcard tests/eval/*.h) $(LIB_NN) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)

# The LeNet training-step driver that bench/lenet_step.py times against PyTorch.
.PHONY: bench-lenet
bench-lenet: $(BUILD)/bench/lenet_step
$(BUILD)/bench/lenet_step: bench/lenet_step.c $(LIB_NN) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_NN) $(LIB_A) $(NN_LIBS) $(LDLIBS)

test: all $(TEST_BIN) $(TTEST_BIN) $(NTEST_BIN)
	@CC="$(CC)" MTGRAD_TEST_LDFLAGS="$(filter -fsanitize=% -fopenmp,$(LDLIBS))" \
	    sh tests/run_tests.sh "$(BUILD)" "$(GOLDEN)" $(TEST_BIN) $(TTEST_BIN) $(NTEST_BIN) $(wildcard tests/scripts/test_*.sh)

# `make tsan`: the tests that run threads, under ThreadSanitizer in $(TSAN_BUILD), with 2 OpenMP
# threads. tests/tsan/test_canaries.sh first proves the setup can see a race and is quiet on a
# correct OpenMP barrier (see the SANITIZER=thread block above for the why).
TSAN_BUILD ?= build-tsan
TSAN_TESTS := $(basename $(wildcard tests/unit/test_threads.c tests/unit/test_kernels.c \
                  tests/nn/test_model.c tests/eval/test_mtl_step.c tests/eval/test_train.c))
TSAN_SCRIPTS := $(wildcard tests/scripts/test_toy_cli.sh)  # `mtgrad toy --threads 2`
TSAN_CANARIES := tests/tsan/canary_race tests/tsan/canary_sync
.PHONY: tsan tsan-run
tsan:
	$(MAKE) BUILD=$(TSAN_BUILD) SANITIZER=thread OPT=-O1 tsan-run
tsan-run: all $(addprefix $(BUILD)/,$(TSAN_CANARIES) $(TSAN_TESTS))
	@OMP_NUM_THREADS=2 sh tests/run_tests.sh "$(BUILD)" "$(GOLDEN)" tests/tsan/test_canaries.sh \
	    $(addprefix $(BUILD)/,$(TSAN_TESTS)) $(TSAN_SCRIPTS)

# `make memcheck`: the CLI under valgrind's memcheck (golden suite, short trainings), built in
# $(VG_BUILD) without sanitizers and with -g for the stacks (tests/valgrind/run_memcheck.sh).
VG_BUILD ?= build-vg
.PHONY: memcheck
memcheck:
	$(MAKE) BUILD=$(VG_BUILD) SANITIZER= OPT="-O1 -g" all
	sh tests/valgrind/run_memcheck.sh $(VG_BUILD) $(GOLDEN)

# The Python binding (python/): pip-installs the package with a copy of $(LIB_SO), offline, with
# the environment's setuptools. PIP_ARGS adds pip options (--user, --target DIR, ...); PYTHON
# defaults to a python3 that has numpy (python/pick_python.sh).
PYTHON   ?= $(shell sh python/pick_python.sh 2>/dev/null || echo python3)
PIP_ARGS ?=
.PHONY: python
python: $(LIB_SO)
	rm -rf python/build  # setuptools would package stale files left there by an earlier build
	MTGRAD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pip install --no-build-isolation --no-deps \
	    --break-system-packages $(PIP_ARGS) ./python

# Fuzzing (tests/fuzz/run_fuzz.sh): every parser under clang's libFuzzer with ASan + UBSan, each
# target for FUZZ_SECONDS seconds; needs clang and libclang-rt-14-dev. Builds in $(BUILD)-fuzz.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run_fuzz.sh $(BUILD)-fuzz

check-golden: $(CLI)
	$(CLI) check-golden $(GOLDEN)

# The main job on built-in data: the CAGrad toy (which methods reach the Pareto set, with an SVG
# of the trajectories) and a quick comparison on the MMoE synthetic tasks (Δm% against STL).
RUN_OUT ?= $(BUILD)/run
run: all
	$(CLI) check-golden --summary $(GOLDEN)
	$(CLI) toy --methods mean,mgda,pcgrad,cagrad,imgrad,nash_mtl,famo,sdmgrad,upgrad --out $(RUN_OUT)
	$(CLI) compare --bench mmoe --quick --threads 2 --out $(RUN_OUT)
	@echo "plots and JSON reports: $(RUN_OUT)/"

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/mtgrad.h include/mtgrad_nn.h include/mtgrad_train.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB_A) $(LIB_NN) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libmtgrad.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmtgrad.so.$(SOVER)
	ln -sf libmtgrad.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libmtgrad.so
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' mtgrad.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mtgrad.pc

clean:
	rm -rf $(BUILD)
