# One helper per kind of target, so every target gets the same warnings and
# an exported cppdiag:: alias (the abseil way).

set(CPPDIAG_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wno-missing-field-initializers)
if(CPPDIAG_WERROR)
  list(APPEND CPPDIAG_WARNINGS -Werror)
endif()

# cppdiag_library(NAME name SRCS ... DEPS ... [PUBLIC_DEPS ...])
function(cppdiag_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(cppdiag_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(cppdiag::${ARG_NAME} ALIAS cppdiag_${ARG_NAME})
  target_include_directories(cppdiag_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(cppdiag_${ARG_NAME} PRIVATE ${CPPDIAG_WARNINGS})
  target_link_libraries(cppdiag_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# cppdiag_executable(NAME name SRCS ... DEPS ...)
function(cppdiag_executable)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${ARG_NAME} PRIVATE ${CPPDIAG_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

# cppdiag_static_executable(NAME name LIKE target [LINK_OPTIONS ...])
# A fully static twin of executable `target` (its object files, compiled
# once, and its libraries, so the two cannot drift), for FROM-scratch images:
# position-independent objects link into a static executable as they are.
# The CPPDIAG_STATIC property makes shared-only dependencies link their
# archives (CppdiagDependencies).
# Statically linked glibc still dlopens for getpwnam, getaddrinfo (of names)
# and dlopen itself, which fail FROM scratch: code must cope with that.
function(cppdiag_static_executable)
  cmake_parse_arguments(ARG "" "NAME;LIKE" "LINK_OPTIONS" ${ARGN})
  get_target_property(libs ${ARG_LIKE} LINK_LIBRARIES)
  add_executable(${ARG_NAME} $<TARGET_OBJECTS:${ARG_LIKE}>)
  target_link_libraries(${ARG_NAME} PRIVATE ${libs})
  target_link_options(${ARG_NAME} PRIVATE -static ${ARG_LINK_OPTIONS})
  set_target_properties(${ARG_NAME} PROPERTIES CPPDIAG_STATIC ON)
endfunction()

# cppdiag_test(NAME name SRCS ... DEPS ... LABELS unit|integration|e2e [TIMEOUT s] [SERIAL])
# Tests are registered one ctest entry per GoogleTest case, labelled so that
# scripts/test.sh can run each label from one build tree. Every test links
# cppdiag::test_support (tests/support: ScopedTempDir, PollUntil, Status
# matchers, Subprocess) and gMock.
function(cppdiag_test)
  cmake_parse_arguments(ARG "SERIAL" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src
                                                 ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${ARG_NAME} PRIVATE ${CPPDIAG_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} cppdiag::test_support GTest::gmock
                                             GTest::gtest GTest::gtest_main)
  target_compile_definitions(${ARG_NAME} PRIVATE
    CPPDIAG_BINARY_DIR="${PROJECT_BINARY_DIR}"
    CPPDIAG_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  # SERIAL: tests that race the kernel (OOM killer, timing) run alone.
  set(serial FALSE)
  if(ARG_SERIAL)
    set(serial TRUE)
  endif()
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL ${serial})
endfunction()
