# SPDX-License-Identifier: MIT
#
# Debian packages with CPack (`make deb`): three packages from the three
# install components, split as Debian splits a library:
#   sockserve          (cli) the command, its man page, systemd units
#   libsockserve0      (lib) the shared library, named after its SONAME
#   libsockserve-dev   (dev) header, static library, .so link, sockserve.pc,
#                            the CMake package, libsockserve(3)
# Runtime dependencies come from dpkg-shlibdeps; libsockserve0 ships a shlibs
# file so packages built against it get "libsockserve0 (>= VERSION)".

set(SS_DEB_MAINTAINER "the sockserve authors <sockserve@maintainers.invalid>"
    CACHE STRING "Maintainer field of the Debian packages (set it when you ship them)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sockserve)
set(CPACK_PACKAGE_VENDOR "the sockserve authors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would put it before each
# component's own description; their first lines are the summaries.
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install with DESTDIR and the real prefix, so what the install step writes
# (sockserve.pc's prefix, the CMake package) names /usr, not the staging dir.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL cli lib dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SS_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME sockserve)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION net)
set(CPACK_COMPONENT_CLI_DESCRIPTION
"servers and clients for TCP, UDP and Unix sockets, from the command line
sockserve is Python's socket and socketserver rebuilt in C. This package holds
the sockserve command: an echo server, a keyword responder, an interactive
client like nc, an authenticated remote-command service over TLS 1.3 and a
load generator, on every address kind and under six concurrency models.")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libsockserve0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # only libsockserve0 has a shared library
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_COMPONENT_LIB_DESCRIPTION
"socketserver-style servers in C (shared library)
libsockserve gives C programs Python's socket and socketserver model: a server
from an address, a handler and options, with serial, threading, forking,
thread-pool, prefork and epoll event models, buffered request streams,
limits, access rules and graceful drain. This package holds the shared
library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libsockserve-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libsockserve0 (= ${PROJECT_VERSION}), libssl-dev")
if(SS_HAVE_URING) # the static library and sockserve.pc need it
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_COMPONENT_DEV_DESCRIPTION
"socketserver-style servers in C (development files)
libsockserve gives C programs Python's socket and socketserver model. This
package holds the header, the static library, the pkg-config file
(sockserve.pc), the CMake package (find_package(sockserve)) and the
libsockserve(3) manual.")

# Each package carries its copyright file (/usr/share/doc/PACKAGE/copyright),
# only when building packages: a plain `make install` keeps share/doc/sockserve.
if(SOCKSERVE_DEB)
  file(READ ${CMAKE_SOURCE_DIR}/LICENSE ss_license)
  file(WRITE ${CMAKE_BINARY_DIR}/copyright
       "sockserve ${PROJECT_VERSION}, by the sockserve authors.\n"
       "License: MIT (below; also /usr/share/doc/sockserve/LICENSE)\n\n"
       "${ss_license}")
  foreach(pair "cli;sockserve" "lib;libsockserve0" "dev;libsockserve-dev")
    list(GET pair 0 comp)
    list(GET pair 1 pkg)
    install(FILES ${CMAKE_BINARY_DIR}/copyright
            DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg} COMPONENT ${comp})
  endforeach()
endif()

include(CPack)
