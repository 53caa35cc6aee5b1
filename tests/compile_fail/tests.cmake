# compile_fail.<name>: tests/compile_fail/<name>.cpp must NOT compile against hw1::hw1, and the compiler's output
# must match the CMake regex on the file's first line:  // EXPECT-ERROR: <regex>
# (diagnostics are produced under LC_ALL=C, so GCC quotes with plain ' rather than curly quotes).
file(GLOB HW1_COMPILE_FAIL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
foreach(src IN LISTS HW1_COMPILE_FAIL_SOURCES)
  get_filename_component(name ${src} NAME_WE)
  file(STRINGS ${src} first_line LIMIT_COUNT 1)
  if(NOT first_line MATCHES "^// EXPECT-ERROR: .")
    message(FATAL_ERROR "${src}: the first line must be '// EXPECT-ERROR: <regex>', the compiler error it must cause.")
  endif()
  # EXCLUDE_FROM_ALL: only the test builds it, so a normal build stays green.
  add_library(compile_fail_${name} OBJECT EXCLUDE_FROM_ALL ${src})
  target_link_libraries(compile_fail_${name} PRIVATE hw1::hw1)
  target_include_directories(compile_fail_${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
  add_test(NAME compile_fail.${name}
    COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DTARGET=compile_fail_${name} -DSOURCE=${src}
      -DCONFIG=$<CONFIG> -P ${CMAKE_CURRENT_LIST_DIR}/run_compile_fail.cmake)
  # Concurrent builds in one build tree would race on the generator's own files.
  set_tests_properties(compile_fail.${name} PROPERTIES LABELS compile_fail RESOURCE_LOCK hw1_build_tree)
endforeach()
