# packaging.cmake — the Debian package, built with CPack (included from the top CMakeLists.txt).
#
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DROLESYNC_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
#
# gives build-deb/rolesyncd_<version>_<arch>.deb with /usr/sbin/rolesyncd, the systemd unit in
# /usr/lib/systemd/system, /etc/rolesyncd/rolesyncd.yaml (a conffile: dpkg keeps local edits on
# upgrade), the man pages, the JSON Schema in /usr/share/rolesyncd and the README in
# /usr/share/doc/rolesyncd. tests/e2e/test_package.py builds and inspects it.
#
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for a package: GNUInstallDirs turns SYSCONFDIR into
# /etc only for that prefix (the default /usr/local gives /usr/local/etc, right for `cmake
# --install` by hand, wrong for a package, and the unit's ExecStart= names /usr/sbin).
# Not done here (a real Debian upload would use debhelper): gzip-compressed man pages, a
# changelog and a copyright file in /usr/share/doc/rolesyncd.

# Files that belong to the installation, not only to the package.
install(FILES ${PROJECT_SOURCE_DIR}/conf/rolesyncd.schema.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/rolesyncd)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(ROLESYNC_PACKAGE_MAINTAINER "rolesyncd maintainers <rolesyncd@example.com>"
    CACHE STRING "Maintainer field of the Debian package (Name <address>)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rolesyncd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${ROLESYNC_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "mirror roles and user-role assignments between cloud tenants")
# CPack turns the line breaks into the control file's continuation lines.
set(CPACK_PACKAGE_DESCRIPTION [=[rolesyncd mirrors roles and user-role assignments from a source tenant to one
or more target tenants of Genesys Cloud (Platform API v2) or AVEVA CONNECT /
OCS Identity. Each cycle reads both sides, diffs them and writes only the
difference, with retries, rate limits, scope rules and a guard against mass
deletions. It runs as a systemd service (Type=notify, DynamicUser, credentials
for the client secrets) and reports through its log, a status file and
Prometheus metrics.]=])
# The package's own paths, whatever the build's CMAKE_INSTALL_PREFIX says.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CHECKSUM SHA256)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # rolesyncd_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${ROLESYNC_PACKAGE_MAINTAINER})
# dpkg-shlibdeps (dpkg-dev) derives Depends from the binary with the right minimum versions;
# without it, name the runtime libraries of the pkg-config modules CMakeLists.txt links.
find_program(ROLESYNC_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(ROLESYNC_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libcurl4, libuv1, libjson-c5, libyaml-0-2, libsystemd0, libssl3")
endif()
# TLS verification needs a trust store.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Maintainer scripts and conffiles, generated into the build tree.
set(_deb ${PROJECT_BINARY_DIR}/debian)
file(MAKE_DIRECTORY ${_deb})
# dpkg keeps an edited config on upgrade and asks before replacing it.
file(WRITE ${_deb}/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/rolesyncd/rolesyncd.yaml\n")
# A fresh install does not start the daemon: the example configuration names tenants and secrets
# that do not exist yet. An upgrade restarts a running daemon on the new binary.
file(WRITE ${_deb}/postinst [=[#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
    if [ -n "$2" ]; then
        systemctl try-restart rolesyncd.service >/dev/null 2>&1 || true
    fi
fi
exit 0
]=])
file(WRITE ${_deb}/prerm [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop rolesyncd.service >/dev/null 2>&1 || true
fi
exit 0
]=])
# The state directory holds only status.json; purge removes it (DynamicUser keeps it under
# /var/lib/private, /var/lib/rolesyncd being a symlink).
file(WRITE ${_deb}/postrm [=[#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
    rm -rf /var/lib/private/rolesyncd /var/lib/rolesyncd
fi
exit 0
]=])
file(CHMOD ${_deb}/postinst ${_deb}/prerm ${_deb}/postrm
     PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
                 WORLD_EXECUTE)
# A package is only right for the /usr prefix (see the top of this file): refuse to build one
# from a tree configured otherwise. cpack runs this script before packaging.
file(WRITE ${_deb}/cpack-project-config.cmake
     "if(NOT \"${CMAKE_INSTALL_PREFIX}\" STREQUAL \"/usr\")\n"
     "  message(FATAL_ERROR \"rolesyncd: configure the package build with "
     "-DCMAKE_INSTALL_PREFIX=/usr (this tree has ${CMAKE_INSTALL_PREFIX})\")\n"
     "endif()\n")
set(CPACK_PROJECT_CONFIG_FILE ${_deb}/cpack-project-config.cmake)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${_deb}/conffiles ${_deb}/postinst ${_deb}/prerm
    ${_deb}/postrm)
unset(_deb)

include(CPack)
