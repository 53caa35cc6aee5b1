# Dependencies of the hw1 headers, for this build tree (hw1Config.cmake.in repeats them as find_dependency calls).
include(GNUInstallDirs)
# hw1::hw1 (tensors, layers, models)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(xtensor REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 REQUIRED)
# minizip reads PyTorch's zip checkpoints (core/pth.hpp); Debian's libminizip-dev ships a pkg-config file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(minizip REQUIRED IMPORTED_TARGET minizip)
# Eigen under -march=native warns through GCC's AVX-512 headers: treat its headers as system headers.
get_target_property(_hw1_eigen_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_hw1_eigen_inc}")
# hw1::data (image codecs and plotting), kept apart so that models-only users link no codecs.
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
pkg_check_modules(cairo REQUIRED IMPORTED_TARGET cairo)
