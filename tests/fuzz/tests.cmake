# libFuzzer harnesses for every parser that reads a user's file, built with clang++-14 (ASan + UBSan) whatever
# compiler builds the rest: one custom command per harness calls clang++-14 directly with hw1::data's include
# directories, so the g++ build needs no second toolchain setup. The suite runs each harness for
# HW1_FUZZ_SECONDS from a seed corpus the harness writes itself (run_fuzzer.sh); longer runs by hand, see
# docs/fuzzing.md. Without clang++-14 and libFuzzer every fuzz.* test reports Skipped, never Passed.
#
# Adding a harness for a new parser, e.g. fuzz_pth for include/hw1/core/pth.hpp:
#   1. tests/fuzz/fuzz_pth.cpp: include "fuzz_common.hpp", define hw1_fuzz_seeds(dir) (seeds written by the
#      library's own writers) and LLVMFuzzerTestOneInput (one input into the parser, wrapped in hw1::fuzz::run so
#      that only hw1::Error may leave it); optionally tests/fuzz/fuzz_pth.dict, the format's tokens (-dict);
#   2. one line `hw1_add_fuzzer(pth)` at the end of this file (`LIBS <paths...>` for libraries beyond libpng and
#      libjpeg).
# Feed the parser from memory where it has such an entry point (SafeTensors::parse, decode_png); one that only
# takes a path gets the input written to a file on /dev/shm first, as fuzz_run_json.cpp does (on ext4 every
# rewrite of a file would wait for the disk).
set(HW1_FUZZ AUTO CACHE STRING "Build the libFuzzer harnesses and run them briefly in the suite (AUTO, ON, OFF)")
set_property(CACHE HW1_FUZZ PROPERTY STRINGS AUTO ON OFF)
set(HW1_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz.* test fuzzes")

set(_hw1_fuzz_ok FALSE)
set(_hw1_fuzz_why "HW1_FUZZ=OFF")
if(NOT HW1_FUZZ STREQUAL "OFF")
  find_program(HW1_FUZZ_CXX NAMES clang++-14 DOC "clang++ with libFuzzer for the fuzz harnesses")
  set(_hw1_fuzz_why "clang++-14 not found")
  if(HW1_FUZZ_CXX)
    # A test compile: clang++-14 alone is not enough, libFuzzer and the sanitizer runtimes (libclang-rt-14-dev)
    # must link. Done once per compiler path (cached), so reconfiguring stays fast.
    if(NOT HW1_FUZZ_PROBED_CXX STREQUAL HW1_FUZZ_CXX)
      set(_probe_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz/probe)
      file(MAKE_DIRECTORY ${_probe_dir})
      file(WRITE ${_probe_dir}/probe.cpp
           "#include <cstddef>\n#include <cstdint>\n"
           "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
      execute_process(COMMAND ${HW1_FUZZ_CXX} -std=c++20 -fsanitize=fuzzer,address,undefined probe.cpp -o probe
                      WORKING_DIRECTORY ${_probe_dir} RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
      set(HW1_FUZZ_PROBED_CXX ${HW1_FUZZ_CXX} CACHE INTERNAL "")
      if(_probe_rc EQUAL 0)
        set(HW1_FUZZ_LINKS TRUE CACHE INTERNAL "")
      else()
        set(HW1_FUZZ_LINKS FALSE CACHE INTERNAL "")
      endif()
    endif()
    if(HW1_FUZZ_LINKS)
      set(_hw1_fuzz_ok TRUE)
    else()
      set(_hw1_fuzz_why "${HW1_FUZZ_CXX} -fsanitize=fuzzer does not link (libclang-rt-14-dev missing?)")
    endif()
  endif()
  if(NOT _hw1_fuzz_ok AND HW1_FUZZ STREQUAL "ON")
    message(FATAL_ERROR "HW1_FUZZ=ON but ${_hw1_fuzz_why}; install clang-14 and libclang-rt-14-dev or use -DHW1_FUZZ=OFF")
  endif()
endif()
if(_hw1_fuzz_ok)
  message(STATUS "hw1: fuzz harnesses on (${HW1_FUZZ_CXX}, ${HW1_FUZZ_SECONDS} s each in the suite)")
  add_custom_target(hw1_fuzzers ALL)
else()
  message(STATUS "hw1: fuzz harnesses off (${_hw1_fuzz_why}); the fuzz.* tests report Skipped")
endif()

# hw1::data's include directories (transitively: Eigen, xtensor, nlohmann_json, libpng, libjpeg, cairo), less
# the system directory that clang must not see as -I (it breaks libstdc++'s #include_next).
set(_hw1_fuzz_includes
    "$<FILTER:$<TARGET_PROPERTY:hw1_data,INTERFACE_INCLUDE_DIRECTORIES>,EXCLUDE,^/usr/include/?$>")

function(hw1_add_fuzzer name)
  cmake_parse_arguments(A "" "" "LIBS" ${ARGN})
  set(test fuzz.${name})
  if(NOT _hw1_fuzz_ok)
    add_test(NAME ${test} COMMAND sh -c "echo '${test}: skipped: ${_hw1_fuzz_why}'; exit 77")
    set_tests_properties(${test} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77)
    return()
  endif()
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${name}.cpp)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/fuzz/fuzz_${name})
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${HW1_FUZZ_CXX} -std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=all "-I$<JOIN:${_hw1_fuzz_includes},;-I>" -I${CMAKE_CURRENT_SOURCE_DIR}/fuzz -I${CMAKE_CURRENT_SOURCE_DIR}
            -MD -MF ${out}.d ${src} -o ${out} ${PNG_LIBRARIES} ${JPEG_LIBRARIES} ${A_LIBS}
    DEPFILE ${out}.d
    DEPENDS ${src}
    COMMENT "Building libFuzzer harness fuzz_${name} (clang++-14, ASan + UBSan)"
    COMMAND_EXPAND_LISTS VERBATIM)
  add_custom_target(fuzz_${name} DEPENDS ${out})
  add_dependencies(hw1_fuzzers fuzz_${name})
  # fuzz_<name>.dict next to the harness, where there is one: tokens of the format (libFuzzer's -dict).
  set(dict "")
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${name}.dict)
    set(dict -dict=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${name}.dict)
  endif()
  add_test(NAME ${test} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzzer.sh ${out}
                                   ${CMAKE_CURRENT_BINARY_DIR}/fuzz/work/${name} ${HW1_FUZZ_SECONDS} ${dict})
  # ASan's own leak check at exit and libFuzzer's per-input one (-detect_leaks, on by default) both apply.
  set_tests_properties(${test} PROPERTIES LABELS fuzz TIMEOUT 300 SKIP_RETURN_CODE 77)
endfunction()

hw1_add_fuzzer(safetensors)
hw1_add_fuzzer(png)
hw1_add_fuzzer(jpeg)
hw1_add_fuzzer(metrics_csv)
hw1_add_fuzzer(run_json)
hw1_add_fuzzer(pth LIBS ${minizip_LINK_LIBRARIES})
