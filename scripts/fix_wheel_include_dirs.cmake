# Injected with -DCMAKE_PROJECT_INCLUDE when building interface packages on the PyPI ROS wheels.
# The wheels' exported targets name include folders of the machine that built them
# (/opt/python/cp311-cp311/...). Before generation, rewrite those entries to this
# interpreter's include folder and numpy's, so nothing outside the venv needs touching.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(_stereospike_fix_imported_includes)
  get_property(targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(tgt IN LISTS targets)
    get_target_property(dirs ${tgt} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT dirs)
      continue()
    endif()
    set(fixed "")
    foreach(d IN LISTS dirs)
      if(d MATCHES "^/opt/python/cp311-cp311/include/python3")
        list(APPEND fixed "${Python3_INCLUDE_DIRS}")
      elseif(d MATCHES "^/opt/python/cp311-cp311/.*/numpy/_core/include")
        list(APPEND fixed "${Python3_NumPy_INCLUDE_DIRS}")
      else()
        list(APPEND fixed "${d}")
      endif()
    endforeach()
    set_target_properties(${tgt} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${fixed}")
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _stereospike_fix_imported_includes)
