# CMake toolchain file: cross-build for arm64 (aarch64) Debian 12 with Debian's cross compiler
# (g++-aarch64-linux-gnu) against a sysroot of Debian's arm64 packages, which
# deploy/cross/make-arm64-sysroot.sh makes (it says why a sysroot and not multiarch).
#
#   deploy/cross/make-arm64-sysroot.sh build-arm64/sysroot
#   cmake -S . -B build-arm64 --toolchain deploy/cross/aarch64-linux-gnu.cmake \
#     -DCMAKE_SYSROOT=$PWD/build-arm64/sysroot -DEDGEPRUNE_BUILD_TESTS=OFF
#   cmake --build build-arm64 --target edgeprune-agent edgeprune_agent_torch
#
# CMAKE_SYSROOT may also come from the environment as EDGEPRUNE_ARM64_SYSROOT.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT CMAKE_SYSROOT AND DEFINED ENV{EDGEPRUNE_ARM64_SYSROOT})
  set(CMAKE_SYSROOT "$ENV{EDGEPRUNE_ARM64_SYSROOT}")
endif()
if(NOT CMAKE_SYSROOT OR NOT EXISTS "${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu")
  message(FATAL_ERROR "aarch64-linux-gnu.cmake needs an arm64 sysroot: make one with "
    "deploy/cross/make-arm64-sysroot.sh <dir> and pass -DCMAKE_SYSROOT=<dir> "
    "(got '${CMAKE_SYSROOT}')")
endif()

# Libraries, headers and CMake packages from the sysroot only; programs (pkg-config, ...) from
# this machine.
set(CMAKE_FIND_ROOT_PATH "${CMAKE_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (toml++, libpq, libseccomp) reads the sysroot's .pc files and prefixes their paths.
set(ENV{PKG_CONFIG_LIBDIR}
  "${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CMAKE_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")
