# cmake -P script behind compile_fail.<name> (see tests.cmake): passes only if building TARGET fails AND the
# output matches the EXPECT-ERROR regex on SOURCE's first line.
file(STRINGS ${SOURCE} first_line LIMIT_COUNT 1)
string(REGEX REPLACE "^// EXPECT-ERROR: " "" expected "${first_line}")
set(ENV{LC_ALL} C)
set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} ${config_args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must fail with an error matching '${expected}'.\n${out}")
endif()
if(NOT out MATCHES "${expected}")
  message(FATAL_ERROR "${SOURCE} failed to compile, but no line matches '${expected}'; the compiler said:\n${out}")
endif()
string(REGEX MATCH "[^\n]*${expected}[^\n]*" line "${out}")
message(STATUS "failed as expected: ${line}")
