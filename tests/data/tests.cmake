# The data tests decode and encode real PNG/JPEG files: link libpng and libjpeg.
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
foreach(t test_image_io test_layout test_metrics test_synthetic)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE PNG::PNG JPEG::JPEG)
  endif()
endforeach()
# test_loader (loader agent): the loader's data sets read PNG/JPEG files.
if(TARGET test_loader)
  target_link_libraries(test_loader PRIVATE PNG::PNG JPEG::JPEG)
endif()
