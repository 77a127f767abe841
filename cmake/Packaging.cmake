# The Debian package: `cpack -G DEB` in a build directory makes
# confcast_VERSION_ARCH.deb (VERSION is project(confcast VERSION ...), the one
# version number the library, the .deb and the Python package share).
#
# What only a system install has (the systemd unit, /etc/confcast, the Python
# package in Debian's dist-packages, /usr/share/doc and the man pages) is the
# install component "system", left out of a plain `cmake --install` so that
# `cmake --install BUILD --prefix P` still writes nothing outside P. CPack
# installs the default components and then that one.

set(CONFCAST_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
set(CONFCAST_DOCDIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/confcast)

# -- the system component ------------------------------------------------------
# Absolute destinations: CPack's DEB generator stages them under its own root.
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/confcast-publisher@.service
        DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT system EXCLUDE_FROM_ALL)
# The directory only: each NAME.yaml in it is the admin's. postinst makes it
# root:confcast 0750 (configs may hold the LLM API key).
install(DIRECTORY DESTINATION /etc/confcast COMPONENT system EXCLUDE_FROM_ALL)

# Debian's /usr/bin/python3 imports from /usr/lib/python3/dist-packages; the
# package finds /usr/lib/libconfcast.so through the dynamic loader.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/subscriber/python/confcast
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/python3/dist-packages
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT system EXCLUDE_FROM_ALL
        PATTERN __pycache__ EXCLUDE PATTERN "*.pyc" EXCLUDE PATTERN "*.so" EXCLUDE)

set(CPACK_PACKAGE_CONTACT "confcast maintainers <maintainers@users.noreply.r-seed-a6c8e2d5.example>")

# Debian wants a compressed changelog and a copyright file in the doc dir.
set(_changelog ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog)
string(TIMESTAMP _date "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${CONFCAST_DEBIAN_DIR}/changelog.in ${_changelog} @ONLY)
add_custom_command(OUTPUT ${_changelog}.gz
  COMMAND gzip -9nc ${_changelog} > ${_changelog}.gz
  DEPENDS ${_changelog} VERBATIM)
set(_system_docs ${_changelog}.gz)

# Man pages from the programs' --help (help2man, when installed).
find_program(HELP2MAN help2man)
# Not in sanitizer builds: their programs may report at exit and fail help2man.
if(HELP2MAN AND CONFCAST_BUILD_PUBLISHER AND TARGET confcastctl AND CONFCAST_SANITIZE STREQUAL "")
  foreach(_program confcast-publisher confcastctl)
    set(_page ${CMAKE_CURRENT_BINARY_DIR}/man/${_program}.1)
    add_custom_command(OUTPUT ${_page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --version-string=${PROJECT_VERSION}
              --include=${CONFCAST_DEBIAN_DIR}/${_program}.h2m --output=${_page} $<TARGET_FILE:${_program}>
      COMMAND gzip -9nf ${_page}
      DEPENDS ${_program} ${CONFCAST_DEBIAN_DIR}/${_program}.h2m VERBATIM)
    install(FILES ${_page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
            PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
            COMPONENT system EXCLUDE_FROM_ALL)
    list(APPEND _system_docs ${_page}.gz)
  endforeach()
else()
  message(STATUS "confcast: no man pages for the .deb (needs help2man, the publisher, no sanitizer)")
endif()
# Built with `all`, so `cpack` after `cmake --build` finds them.
add_custom_target(confcast_package_docs ALL DEPENDS ${_system_docs})

install(FILES ${_changelog}.gz ${CONFCAST_DEBIAN_DIR}/copyright ${PROJECT_SOURCE_DIR}/docs/install.md
        DESTINATION ${CONFCAST_DOCDIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${CONFCAST_DEBIAN_DIR}/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME confcast
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/examples/holmesgpt_api/config.yaml
        DESTINATION ${CONFCAST_DOCDIR}/examples RENAME holmesgpt.yaml
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT system EXCLUDE_FROM_ALL)

# -- CPack ---------------------------------------------------------------------
set(CPACK_PACKAGE_NAME confcast)
set(CPACK_PACKAGE_VENDOR "confcast")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "shared-memory config broadcaster with wait-free readers")
set(CPACK_PACKAGE_DESCRIPTION
"A publisher watches a YAML config file, validates it against a schema and
publishes each good version into a shared-memory segment. Worker processes
of the same host (C, C++, Python) map it read-only and read values without
locks or system calls; a bad edit never reaches them.
.
This package holds confcast-publisher, confcastctl, the C library
libconfcast.so with its headers, CMake and pkg-config files, the Python
package, and the systemd unit template confcast-publisher@.service.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_CMAKE_PROJECTS
  "${PROJECT_BINARY_DIR};confcast;ALL;/"
  "${PROJECT_BINARY_DIR};confcast;system;/")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared-library dependencies from dpkg-shlibdeps; python3 for the Python
# package, adduser for the service user.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3, adduser")
# A shlibs file for libconfcast.so (its ldconfig trigger is deploy/debian/triggers).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CONFCAST_DEBIAN_DIR}/postinst ${CONFCAST_DEBIAN_DIR}/prerm ${CONFCAST_DEBIAN_DIR}/postrm
  ${CONFCAST_DEBIAN_DIR}/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
