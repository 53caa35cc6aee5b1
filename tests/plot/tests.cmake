# The plot tests draw with cairo (the t-SNE test links it too: both headers live in hw1/plot).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CAIRO REQUIRED IMPORTED_TARGET cairo)
foreach(t IN ITEMS test_plot test_tsne)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE PkgConfig::CAIRO)
  endif()
endforeach()
