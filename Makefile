# clipdex - build with plain `make`; `make test` runs the whole suite offline.
#
# Knobs:
#   BUILD=dir                   output directory (default build; build-san with SANITIZE)
#   SANITIZE=address,undefined  sanitizer build
#   WERROR=1                    warnings are errors
#   OPT=-O2                     optimisation flags
#   CC=clang                    compiler
#   ARCH=aarch64                cross build for 64-bit ARM into build-aarch64/ (Debian's
#                               gcc-aarch64-linux-gnu, the arm64 multiarch -dev packages);
#                               `make ARCH=aarch64 test` runs the suite under qemu-aarch64
#                               once per CPU model of EMU_CPUS, `make test-aarch64` a quick
#                               subset (docs/arm.md). A native build on an ARM machine
#                               is the plain `make`.

ifeq ($(ARCH),aarch64)
CC      := aarch64-linux-gnu-gcc
CXX     := aarch64-linux-gnu-g++
BUILD   ?= build-aarch64
PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
# the tests run each program under the emulator (tests/run.sh), once per CPU
# model: the A53 has no dot product (plain NEON int8), `max` has everything
CLIPDEX_EXEC ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
EMU_CPUS ?= cortex-a53 max
export NM := aarch64-linux-gnu-nm
export OBJDUMP := aarch64-linux-gnu-objdump
endif
CC      ?= cc
OPT     ?= -O2
PKG_CONFIG ?= pkg-config
PKGS    := libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS)) -lgif -lpthread -lm
# the application layer only (the engine never links these)
APP_PKGS   := sqlite3 libcurl
# video (app/video/): FFmpeg's libraries
APP_PKGS   += libavformat libavcodec libavutil libswscale libavdevice
# `clipdex serve` needs libmicrohttpd; without it the rest still builds
ifeq ($(shell $(PKG_CONFIG) --exists libmicrohttpd && echo yes),yes)
APP_PKGS   += libmicrohttpd
APP_DEFS   := -DCLIPDEX_HAVE_MHD
endif
# approximate search (app/ann/, its one C++ file): Debian's static libfaiss,
# which needs OpenMP, BLAS and LAPACK; linked into the program only
ANN_LIBS   := -lfaiss -fopenmp -lblas -llapack -lstdc++
APP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(APP_PKGS)) $(APP_DEFS) -Iapp
APP_LIBS   := $(shell $(PKG_CONFIG) --libs $(APP_PKGS))

ifdef SANITIZE
BUILD   ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD   ?= build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif

CXXWARN := -Wall -Wextra -Wshadow -Wno-unused-parameter $(filter -Werror,$(WARN))
CXXFLAGS_ALL := -std=c++17 -g $(OPT) $(CXXWARN) $(SANFLAGS) -fPIC -fvisibility=hidden -Iinclude -Iapp $(CXXFLAGS)
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SANFLAGS) -fPIC -fvisibility=hidden \
              -Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)

# Sources are found by folder, at any depth: a new file (or a new folder of
# files) needs no edit here. Objects mirror the source paths under $(BUILD)/obj/.
# The application includes its headers as "folder/file.h" (-Iapp), as the
# engine does with -Isrc. Tests: tests/test_*.c test the engine, tests/app/
# mirrors app/ (tests/app/store/test_index.sh tests app/store/).
LIB_SRC  := $(sort $(shell find src -name '*.c'))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
APP_SRC  := $(sort $(shell find app -name '*.c'))
APP_CXX_SRC := $(sort $(shell find app -name '*.cpp'))
APP_OBJ  := $(APP_SRC:%.c=$(BUILD)/obj/%.o) $(APP_CXX_SRC:%.cpp=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(shell find tests -name 'test_*.c' -not -path '*/node_modules/*'))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)

PREFIX  ?= /usr/local

.PHONY: all lib test test-aarch64 check fuzz clean install bench deps quickstart deb
all: lib $(BUILD)/clipdex $(TOOL_BIN)

lib: $(BUILD)/libclipdex.a $(BUILD)/libclipdex.so $(BUILD)/clipdex.pc

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libclipdex.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libclipdex.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libclipdex.so.0 $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# The version is the header's CLIPDEX_VERSION; the .pc names $(PREFIX), and
# `make install` writes it again for the PREFIX it installs to.
VERSION := $(shell sed -n 's/^\#define CLIPDEX_VERSION "\(.*\)"/\1/p' include/clipdex.h)
PC_SED   = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@PRIVATE@|$(PKGS)|'

$(BUILD)/clipdex.pc: clipdex.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PC_SED) $< > $@

$(BUILD)/obj/app/%.o: app/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iapp $(APP_CFLAGS) -MMD -MP -c $< -o $@

# the FAISS wrapper (app/ann/*.cpp), the only C++ (g++, C++17)
$(BUILD)/obj/app/%.o: app/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/clipdex: $(APP_OBJ) $(BUILD)/libclipdex.a
	$(CC) $(LDFLAGS_ALL) -o $@ $(APP_OBJ) $(BUILD)/libclipdex.a $(APP_LIBS) $(ANN_LIBS) $(PKG_LIBS)

# A test may compile sources in (tests/test_vecscan.c includes
# "search/vecscan.c"; app tests include app/ sources), hence -Iapp, the application's libraries
# (FFmpeg for tests/app/video/) and the dependency files.
$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libclipdex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests -Iapp $(APP_CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libclipdex.a $(APP_LIBS) $(PKG_LIBS) $(LDFLAGS_ALL)

$(BUILD)/tools/%: tools/%.c $(BUILD)/libclipdex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libclipdex.a $(PKG_LIBS) $(LDFLAGS_ALL)

# Fuzz targets as plain programs (fuzz/main.c feeds them files); `make fuzz`
# builds the libFuzzer versions with clang into $(BUILD)/libfuzzer/.
$(BUILD)/fuzz/%: fuzz/%.c fuzz/main.c $(BUILD)/libclipdex.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iapp $(APP_CFLAGS) -o $@ $< fuzz/main.c $(BUILD)/libclipdex.a $(APP_LIBS) $(PKG_LIBS) $(LDFLAGS_ALL)

FUZZ_CC ?= clang
fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) SANITIZE=address,undefined \
	  CFLAGS="-fsanitize=fuzzer-no-link" build-fuzz/libclipdex.a
	@mkdir -p build-fuzz/libfuzzer
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc -Iapp $(PKG_CFLAGS) $(APP_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o build-fuzz/libfuzzer/$$n $$f \
	    build-fuzz/libclipdex.a $(APP_LIBS) $(PKG_LIBS) || exit 1; done

ifdef CLIPDEX_EXEC
test: all $(TEST_BIN) $(FUZZ_BIN)
	for cpu in $(EMU_CPUS); do echo "== $(CLIPDEX_EXEC) -cpu $$cpu"; \
	  CLIPDEX_EXEC="$(CLIPDEX_EXEC) -cpu $$cpu" BUILD=$(BUILD) sh tests/run.sh || exit 1; done

# The quick emulated subset (CI; docs/arm.md says what it leaves out): under
# the A53 the kernel tests (the neon path: every fp32 kernel and the plain
# int8 one against the scalar reference, threads, batches), the tiny/small
# goldens, tokenizer and images; under `max` the int8 tiles of both paths
# (the fp32 kernels are the same functions on neon-dot).
EMU_QUICK ?= test_kernels test_qgemm test_golden test_tokenizer test_image
test-aarch64: all $(TEST_BIN)
	CLIPDEX_EXEC="$(CLIPDEX_EXEC) -cpu cortex-a53" CLIPDEX_GOLDEN_SKIP=b32 CLIPDEX_TESTS="$(EMU_QUICK)" \
	  BUILD=$(BUILD) sh tests/run.sh
	CLIPDEX_EXEC="$(CLIPDEX_EXEC) -cpu max" CLIPDEX_TESTS=test_qgemm BUILD=$(BUILD) sh tests/run.sh
else
test: all $(TEST_BIN) $(FUZZ_BIN)
	BUILD=$(BUILD) sh tests/run.sh

test-aarch64:
	$(MAKE) ARCH=aarch64 test-aarch64
endif

check: test

bench: all
	sh bench/run.sh $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=]: the header, libclipdex.a,
# libclipdex.so.VERSION with its soname link .so.0 and the .so link, the .pc
# (for this PREFIX) and the program. tests/test_install.sh checks the result.
LIBDIR_I := $(DESTDIR)$(PREFIX)/lib
install: all
	install -d $(LIBDIR_I)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/clipdex.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libclipdex.a $(LIBDIR_I)/
	install -m 755 $(BUILD)/libclipdex.so $(LIBDIR_I)/libclipdex.so.$(VERSION)
	ln -sf libclipdex.so.$(VERSION) $(LIBDIR_I)/libclipdex.so.0
	ln -sf libclipdex.so.0 $(LIBDIR_I)/libclipdex.so
	$(PC_SED) clipdex.pc.in > $(LIBDIR_I)/pkgconfig/clipdex.pc
	install -m 755 $(BUILD)/clipdex $(DESTDIR)$(PREFIX)/bin/

# make deb: the Debian package of this build (tools/deb.sh; amd64, or arm64
# with ARCH=aarch64); tests/test_deb.sh checks it with lintian.
DEB_ARCH := $(if $(filter aarch64,$(ARCH)),arm64,$(shell dpkg --print-architecture 2>/dev/null))
deb: all
	sh tools/deb.sh $(BUILD) $(DEB_ARCH) $(if $(filter aarch64,$(ARCH)),aarch64-linux-gnu-strip,strip) \
	  $(if $(ARCH),ARCH=$(ARCH))

# make deps: the packages of tools/deps.txt (apt-get as root, else the sudo
# command); make quickstart: README's first command, ./quickstart.sh.
deps:
	sh tools/deps.sh

quickstart:
	./quickstart.sh

clean:
	rm -rf build build-san build-fuzz build-aarch64

-include $(LIB_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(TEST_BIN:=.d)
