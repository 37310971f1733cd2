# Makefile: builds the library (build/libssm.a), the trainers, benchmarks and tests.
#
#   make              library + every binary into build/
#   make test         build and run every test; ends with "N passed, N failed[, N skipped]"
#   make bench        build the benchmarks (run them from build/)
#   make fuzz         libFuzzer targets (clang) into build/fuzz/
#   make format       clang-format every source file in place
#   NO_CUDA=1         CPU-only build even when nvcc is present
#   SANITIZE=1        address + undefined-behaviour sanitizers (into build-sanitize/)

CXX      ?= g++
CXXFLAGS ?= -O2 -march=native
CXXFLAGS += -std=c++17 -Wall -Wextra -pthread -I. -MMD -MP
LDFLAGS  += -pthread
BUILD    := build

ifeq ($(SANITIZE),1)
  BUILD    := build-sanitize
  CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=address,undefined
endif

# ---- CUDA detection ----------------------------------------------------------------------
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(NO_CUDA),1)
  NVCC :=
endif
CU_SRC := $(wildcard tensor/*.cu cuda/*.cu autograd/*.cu mamba/*.cu s4/*.cu)
# nvcc on PATH may be a wrapper script (/usr/local/bin/nvcc exec'ing the real one), so the
# toolkit's root is asked of nvcc itself (-dryrun prints TOP=<root>) rather than derived from
# the path. CUDA_HOME=DIR overrides. Without cublas_v2.h under it the build is CPU only, and
# the banner says why.
NO_CUDA_WHY := nvcc not found
ifneq ($(NVCC),)
  ifeq ($(origin CUDA_HOME),undefined)
    CUDA_HOME := $(shell $(NVCC) -dryrun -c -x cu /dev/null -o /dev/null 2>&1 | \
                   sed -n 's/^\#\$$ TOP=//p' | head -n1)
  endif
  ifeq ($(CUDA_HOME),)
    CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
  endif
  CUDA_HOME := $(abspath $(CUDA_HOME))
  ifeq ($(wildcard $(CUDA_HOME)/include/cublas_v2.h),)
    NO_CUDA_WHY := nvcc at $(NVCC) but no $(CUDA_HOME)/include/cublas_v2.h; set CUDA_HOME
    NVCC :=
  endif
endif
ifeq ($(NO_CUDA),1)
  NVCC :=
  NO_CUDA_WHY := NO_CUDA=1
endif
ifneq ($(NVCC),)
  NVCCFLAGS  ?= -O2 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80
  NVCCFLAGS  += -std=c++17 -I. -Xcompiler -Wall,-Wextra -MMD -MP
  CXXFLAGS   += -DSSM_CUDA -I$(CUDA_HOME)/include
  LDLIBS     += -L$(CUDA_HOME)/lib64 -lcufft -lcublas -lcudart -Wl,-rpath,$(CUDA_HOME)/lib64
  CU_CPP_SRC := $(wildcard cuda/*.cpp)
  CU_OBJ     := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
  BUILD_KIND := CUDA (nvcc: $(NVCC); toolkit: $(CUDA_HOME); $(words $(CU_SRC)) .cu files)
else
  CU_OBJ     :=
  BUILD_KIND := CPU only ($(NO_CUDA_WHY))
endif

# ---- HDF5 (optional) ----------------------------------------------------------------------
# data/hdf5.cpp reads EEG recordings through Debian's libhdf5-dev when pkg-config finds it
# (-DSSM_HDF5); without it, reading an HDF5 file is an error that says how to install it.
# NO_HDF5=1 forces it off.
HDF5_FLAGS := $(if $(filter 1,$(NO_HDF5)),,$(shell pkg-config --cflags hdf5 2>/dev/null))
HDF5_LIBS  := $(if $(filter 1,$(NO_HDF5)),,$(shell pkg-config --libs hdf5 2>/dev/null))
ifneq ($(HDF5_LIBS),)
  CXXFLAGS   += -DSSM_HDF5 $(HDF5_FLAGS)
  LDLIBS     += $(HDF5_LIBS)
  BUILD_KIND += + HDF5
endif

# ---- sources ----------------------------------------------------------------------------
# train/train_*.cpp, hf_check.cpp, generate.cpp, hippo_demo.cpp, eeg_info.cpp and make_eeg.cpp
# are programs; the other train/*.cpp are the pieces they share (flags, progress bar, metrics
# log, plots) and go into the library.
TRAIN_SRC := $(wildcard train/train_*.cpp train/hf_check.cpp train/generate.cpp train/hippo_demo.cpp \
                         train/eeg_info.cpp train/make_eeg.cpp)
LIB_SRC   := $(wildcard tensor/*.cpp tensor/cpu/*.cpp autograd/*.cpp data/*.cpp mamba/*.cpp s4/*.cpp) \
             $(filter-out $(TRAIN_SRC),$(wildcard train/*.cpp))
# cuda/*.cpp (the runtime: device, streams, allocator) and every .cu file are built only when
# nvcc was found.
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o) $(CU_CPP_SRC:%.cpp=$(BUILD)/obj/%.o) $(CU_OBJ)
LIB       := $(BUILD)/libssm.a
BENCH_SRC := $(wildcard bench/*.cpp)
TEST_SRC  := $(wildcard tests/*.cpp)
TRAINERS  := $(TRAIN_SRC:train/%.cpp=$(BUILD)/%)
BENCHES   := $(BENCH_SRC:bench/%.cpp=$(BUILD)/%)
TEST_BIN  := $(BUILD)/run_tests
# doctest comes from Debian's doctest-dev (/usr/include/doctest); DOCTEST_INC=DIR points at
# another directory holding doctest/doctest.h (a machine where apt cannot install it).
DOCTEST_INC ?= /usr/include
DOCTEST_H   := $(DOCTEST_INC)/doctest/doctest.h

.PHONY: all run test bench fuzz format clean banner check-doctest
all: banner $(LIB) $(TRAINERS) $(BENCHES)

banner:
	@echo "build: $(BUILD_KIND) -> $(BUILD)/"

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/%: train/%.cpp $(LIB)
	$(CXX) $(CXXFLAGS) $< $(LIB) -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%: bench/%.cpp $(LIB)
	$(CXX) $(CXXFLAGS) $< $(LIB) -o $@ $(LDFLAGS) $(LDLIBS)

bench: banner $(BENCHES)

# ---- the main job: seizure detection with Mamba on synthetic EEG (README) -----------------
# RUN_ARGS adds flags, e.g. make run RUN_ARGS="--model s4"; build/train_eeg --help lists them.
RUN_ARGS ?=
run: banner $(BUILD)/train_eeg
	$(BUILD)/train_eeg $(RUN_ARGS)

# ---- tests ------------------------------------------------------------------------------
check-doctest:
	@test -f $(DOCTEST_H) || { echo "error: $(DOCTEST_H) not found. The tests use doctest from Debian's doctest-dev: sudo apt-get install -y doctest-dev"; exit 1; }

TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
$(BUILD)/obj/tests/%.o: tests/%.cpp | check-doctest
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(if $(filter /usr/include,$(DOCTEST_INC)),,-isystem $(DOCTEST_INC)) -c $< -o $@

$(TEST_BIN): $(TEST_OBJ) $(LIB)
	$(CXX) $(CXXFLAGS) $(TEST_OBJ) $(LIB) -o $@ $(LDFLAGS) $(LDLIBS)

test: check-doctest banner all $(TEST_BIN)
	@bash tests/run.sh $(TEST_BIN)

# ---- fuzzing (clang + libFuzzer from libclang-rt-14-dev) -----------------------------------
FUZZ_CXX   ?= clang++
FUZZ_FLAGS := -std=c++17 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC   := $(wildcard tests/fuzz/*.cpp)
# The file-format code under test and the tensor layer it builds on (no autograd).
FUZZ_DEPS  := data/json.cpp data/safetensors.cpp data/atomic_file.cpp data/edf.cpp data/eeg.cpp \
              data/annotations.cpp data/eeg_preprocess.cpp \
              $(wildcard tensor/*.cpp tensor/cpu/*.cpp)
fuzz: $(FUZZ_SRC:tests/fuzz/%.cpp=build/fuzz/%)
build/fuzz/%: tests/fuzz/%.cpp $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $< $(FUZZ_DEPS) -o $@ -pthread

format:
	clang-format -i $(shell find tensor autograd cuda data mamba s4 train tests bench -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')

clean:
	rm -rf build build-sanitize

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
