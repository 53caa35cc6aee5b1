# package.downstream: install this build tree's component 'hw1' into a fresh prefix, move the prefix (it must be relocatable), then
# configure, build and run consumers that know nothing but find_package(hw1 CONFIG REQUIRED).
set(_hw1_pkg_launcher "")
if(CMAKE_CXX_COMPILER_LAUNCHER)
  set(_hw1_pkg_launcher ${CMAKE_CXX_COMPILER_LAUNCHER})
endif()
add_test(NAME package.downstream
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/package_downstream
    -DGENERATOR=${CMAKE_GENERATOR}
    -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCXX_LAUNCHER=${_hw1_pkg_launcher}
    -DBUILD_TYPE=$<IF:$<CONFIG:>,Release,$<CONFIG>>
    -P ${CMAKE_CURRENT_LIST_DIR}/run_downstream.cmake)
set_tests_properties(package.downstream PROPERTIES LABELS package TIMEOUT 1800)
