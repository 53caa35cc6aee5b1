# Dependencies of the hw1 headers. Included by the build tree and (as find_dependency calls) by hw1Config.cmake.
include(GNUInstallDirs)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(xtensor REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 REQUIRED)
# Eigen under -march=native warns through GCC's AVX-512 headers: treat its headers as system headers.
get_target_property(_hw1_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_hw1_eigen_inc}")
