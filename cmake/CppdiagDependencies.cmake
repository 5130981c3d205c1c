# Every dependency comes from a Debian package (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
# spdlog and fmt are built from their headers (cppdiag::logging and fmt::fmt
# below): Debian ships them as shared libraries only, which -static cannot
# link. Their CMake packages are not loaded, as they would define fmt::fmt as
# libfmt.so.
find_path(CPPDIAG_SPDLOG_INCLUDE_DIR spdlog/spdlog.h REQUIRED)
find_path(CPPDIAG_FMT_INCLUDE_DIR fmt/format.h REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Boost 1.81 REQUIRED)
pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET libdw)
pkg_check_modules(LIBELF REQUIRED IMPORTED_TARGET libelf)
# libedit (BSD licence): line editing and history at the `dump analyze` prompt.
pkg_check_modules(LIBEDIT REQUIRED IMPORTED_TARGET libedit)
if(CPPDIAG_BUILD_TESTS)
  # Tests use cpp-httplib's client; nothing we ship links it.
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()

# fmt::fmt: fmt header-only, for code that formats without logging.
add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${CPPDIAG_FMT_INCLUDE_DIR}
  INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY)

# cppdiag::logging: spdlog compiled once here (deps/spdlog_lib.cc, with
# SPDLOG_COMPILED_LIB), fmt header-only. Debian's spdlog headers define
# SPDLOG_FMT_EXTERNAL (tweakme.h), so spdlog formats with the fmt headers too.
add_library(cppdiag_logging STATIC ${CMAKE_CURRENT_LIST_DIR}/deps/spdlog_lib.cc)
add_library(cppdiag::logging ALIAS cppdiag_logging)
target_include_directories(cppdiag_logging PUBLIC ${CPPDIAG_SPDLOG_INCLUDE_DIR})
target_compile_definitions(cppdiag_logging PUBLIC SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL)
target_link_libraries(cppdiag_logging PUBLIC fmt::fmt Threads::Threads)

# Boost.Beast and Boost.Asio, header-only (leakapp's HTTP server).
add_library(cppdiag_beast INTERFACE)
add_library(cppdiag::beast ALIAS cppdiag_beast)
target_link_libraries(cppdiag_beast INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(cppdiag_beast INTERFACE BOOST_ASIO_NO_DEPRECATED)

# Libraries that executables link as shared objects, except those with the
# CPPDIAG_STATIC property (cppdiag_static_executable): -static would reject
# the .so paths pkg-config's targets carry, and libdw.a needs libdw's private
# dependencies (pkg-config --static libdw, plus zstd, which libelf.a uses).
set(_cppdiag_static "$<BOOL:$<TARGET_PROPERTY:CPPDIAG_STATIC>>")
foreach(_lib dw elf)
  string(TOUPPER ${_lib} _target)
  get_target_property(_shared PkgConfig::LIB${_target} INTERFACE_LINK_LIBRARIES)
  set_property(TARGET PkgConfig::LIB${_target} PROPERTY INTERFACE_LINK_LIBRARIES
    "$<IF:${_cppdiag_static},${_lib}$<SEMICOLON>elf$<SEMICOLON>z$<SEMICOLON>lzma$<SEMICOLON>bz2$<SEMICOLON>zstd,${_shared}>")
endforeach()
# libedit.a needs the terminal database (libtinfo, as libtermcap) and libbsd.
get_target_property(_shared PkgConfig::LIBEDIT INTERFACE_LINK_LIBRARIES)
set_property(TARGET PkgConfig::LIBEDIT PROPERTY INTERFACE_LINK_LIBRARIES
  "$<IF:${_cppdiag_static},edit$<SEMICOLON>tinfo$<SEMICOLON>bsd$<SEMICOLON>md,${_shared}>")
# FindZLIB would make ZLIB::ZLIB an imported libz.so; "-lz" finds libz.so in a
# normal link and libz.a under -static.
add_library(ZLIB::ZLIB INTERFACE IMPORTED)
set_property(TARGET ZLIB::ZLIB PROPERTY INTERFACE_LINK_LIBRARIES z)
find_package(ZLIB REQUIRED)
