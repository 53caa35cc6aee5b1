# Installation and the exported CMake package: headers, hw1::hw1 and hw1::data, a relocatable hw1Config.cmake.
# All of it is install component 'hw1' (the example programs are not), so it installs without building them.
# Header-only, so everything CMake needs lives under the arch-independent data directory.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HW1_INSTALL_CMAKEDIR ${CMAKE_INSTALL_DATADIR}/cmake/hw1 CACHE STRING "Where hw1Config.cmake is installed")

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hw1 DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT hw1)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/hw1 COMPONENT hw1)

# Two export sets: hw1Config loads hw1::data only where its codecs are found, so models-only users need none.
install(TARGETS hw1 EXPORT hw1Targets COMPONENT hw1)
install(TARGETS hw1_data EXPORT hw1DataTargets COMPONENT hw1)
install(EXPORT hw1Targets NAMESPACE hw1:: DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)
install(EXPORT hw1DataTargets NAMESPACE hw1:: DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)

# hw1::cuda is exported only from a build that had the CUDA backend; its config needs CUDAToolkit and cuDNN
# (FindCUDNN.cmake is installed beside hw1Config.cmake for that).
if(HW1_HAVE_CUDA)
  install(TARGETS hw1_cuda EXPORT hw1CudaTargets COMPONENT hw1)
  install(EXPORT hw1CudaTargets NAMESPACE hw1:: DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)
endif()
# hw1::distributed likewise, from a build that found MPI.
if(HW1_HAVE_MPI)
  install(TARGETS hw1_distributed EXPORT hw1DistributedTargets COMPONENT hw1)
  install(EXPORT hw1DistributedTargets NAMESPACE hw1:: DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindCUDNN.cmake DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hw1Config.cmake.in
  ${PROJECT_BINARY_DIR}/hw1Config.cmake
  INSTALL_DESTINATION ${HW1_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hw1ConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/hw1Config.cmake ${PROJECT_BINARY_DIR}/hw1ConfigVersion.cmake
  DESTINATION ${HW1_INSTALL_CMAKEDIR} COMPONENT hw1)
