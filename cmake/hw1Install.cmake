# Installation and the exported CMake package (refined by the packaging work).
include(GNUInstallDirs)
install(DIRECTORY include/hw1 DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
