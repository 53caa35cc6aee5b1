# Every public header compiles alone: one translation unit per header that includes it twice (it includes what it
# uses, and its include guard holds), built with the library's flags as part of the build. The CUDA backend's
# headers compile as CUDA where that backend is on (one architecture: the point is the includes, not the code).
# headers.self_contained re-checks that the targets are up to date, so a broken header is also a failing test.
file(GLOB_RECURSE hw1_public_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
     ${PROJECT_SOURCE_DIR}/include/hw1/*.hpp ${PROJECT_SOURCE_DIR}/include/hw1/*.cuh)
set(hw1_header_cxx "")
set(hw1_header_cuda "")
foreach(h IN LISTS hw1_public_headers)
  string(MAKE_C_IDENTIFIER "${h}" id)
  if(h MATCHES "^hw1/backend/cuda")
    if(NOT HW1_HAVE_CUDA)
      continue()
    endif()
    set(src ${CMAKE_CURRENT_BINARY_DIR}/headers/${id}.cu)
    list(APPEND hw1_header_cuda ${src})
  else()
    set(src ${CMAKE_CURRENT_BINARY_DIR}/headers/${id}.cpp)
    list(APPEND hw1_header_cxx ${src})
  endif()
  file(CONFIGURE OUTPUT ${src} CONTENT "#include <${h}>\n#include <${h}>\n" @ONLY)
endforeach()
add_library(hw1_header_check OBJECT ${hw1_header_cxx})
target_link_libraries(hw1_header_check PRIVATE hw1::data hw1_build_flags)
set(hw1_header_targets hw1_header_check)
if(HW1_HAVE_CUDA AND hw1_header_cuda)
  add_library(hw1_header_check_cuda OBJECT ${hw1_header_cuda})
  target_link_libraries(hw1_header_check_cuda PRIVATE hw1::cuda hw1_build_flags)
  set_target_properties(hw1_header_check_cuda PROPERTIES CUDA_ARCHITECTURES 75)
  list(APPEND hw1_header_targets hw1_header_check_cuda)
endif()
add_test(NAME headers.self_contained
         COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${hw1_header_targets})
set_tests_properties(headers.self_contained PROPERTIES LABELS headers)
