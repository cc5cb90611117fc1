# Install rules and the two Debian packages (CPack, DEB generator), included by the top-level
# CMakeLists.txt. `cpack --config <build>/CPackConfig.cmake` in the build directory writes
# <build>/packages/edgeprune-server_<v>_<arch>.deb and edgeprune-agent_<v>_<arch>.deb.
#
#   edgeprune-server  /usr/bin/edgeprune-server (server, CLI and, as `model-worker`, the
#                     sandboxed model worker: one binary), /usr/bin/edgeprune (the operator CLI)
#                     and its bash completion, /usr/share/edgeprune/migrations/,
#                     /lib/systemd/system/edgeprune-{server,worker}.service,
#                     /etc/edgeprune/server.toml
#                     (conffile), system user `edgeprune`, /var/lib/edgeprune (0700)
#   edgeprune-agent   /usr/lib/edgeprune/{edgeprune-agent,edgeprune_agent_torch.so} (the agent
#                     opens the module next to its resolved binary), /usr/bin/edgeprune-agent
#                     (a relative symlink), /lib/systemd/system/edgeprune-agent.service,
#                     /etc/edgeprune/agent.toml (conffile), system user `edgeprune-agent`,
#                     /var/lib/edgeprune-agent (0700)
#
# Runtime dependencies come from dpkg-shlibdeps (libtorch1.13, Boost, OpenSSL, SQLite, ...);
# tests/deploy/packages_test.sh builds, lints (lintian) and runs both packages.
include(GNUInstallDirs)
set(_ep_deb "${PROJECT_SOURCE_DIR}/deploy/debian")
set(_ep_gen "${PROJECT_BINARY_DIR}/debian")

# Debian wants a copyright file and a gzip -9n changelog in each package's doc directory.
foreach(pkg edgeprune-server edgeprune-agent)
  string(REPLACE "edgeprune-" "" comp ${pkg})
  set(out "${_ep_gen}/${pkg}/changelog.Debian.gz")
  add_custom_command(OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${_ep_gen}/${pkg}"
    COMMAND sed -e "s/@PACKAGE@/${pkg}/" -e "s/@VERSION@/${PROJECT_VERSION}/"
            "${_ep_deb}/changelog.in" | gzip -9n > "${out}"
    DEPENDS "${_ep_deb}/changelog.in" VERBATIM)
  add_custom_target(${pkg}-changelog ALL DEPENDS "${out}")
  install(FILES "${out}" "${_ep_deb}/copyright"
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${comp})
endforeach()

# edgeprune-server
install(TARGETS edgeprune-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(TARGETS edgeprune RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(FILES "${PROJECT_SOURCE_DIR}/cli/edgeprune.bash" RENAME edgeprune
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT server)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/migrations/" DESTINATION ${CMAKE_INSTALL_DATADIR}/edgeprune/migrations
  COMPONENT server FILES_MATCHING PATTERN "*.sql")
install(FILES "${PROJECT_SOURCE_DIR}/deploy/systemd/edgeprune-server.service"
  "${PROJECT_SOURCE_DIR}/deploy/systemd/edgeprune-worker.service"
  DESTINATION /lib/systemd/system COMPONENT server)
install(FILES "${_ep_deb}/server.toml" DESTINATION /etc/edgeprune COMPONENT server)

# edgeprune-agent
install(TARGETS edgeprune-agent RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR}/edgeprune COMPONENT agent)
install(TARGETS edgeprune_agent_torch LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/edgeprune
  COMPONENT agent)
file(MAKE_DIRECTORY "${_ep_gen}/bin")
file(CREATE_LINK ../lib/edgeprune/edgeprune-agent "${_ep_gen}/bin/edgeprune-agent" SYMBOLIC)
install(FILES "${_ep_gen}/bin/edgeprune-agent" DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
install(FILES "${PROJECT_SOURCE_DIR}/deploy/systemd/edgeprune-agent.service"
  DESTINATION /lib/systemd/system COMPONENT agent)
install(FILES "${_ep_deb}/agent.toml" DESTINATION /etc/edgeprune COMPONENT agent)

# CPack
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeprune)
set(CPACK_PACKAGE_VENDOR "edgeprune")
set(CPACK_PACKAGE_CONTACT "edgeprune maintainers <maintainers@edgeprune.example>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_OUTPUT_FILE_PREFIX "${PROJECT_BINARY_DIR}/packages")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server agent)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://edgeprune.example/")

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME edgeprune-server)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
set(CPACK_DEBIAN_SERVER_DESCRIPTION "edgeprune server: fleet, pruning and model delivery over HTTPS
The server learns each IoT gateway's hardware from the edgeprune agent,
prunes a master TorchScript model into a variant that fits the gateway's
budget, signs it and ships it over mutual TLS. Operators drive it through a
REST API or the edgeprune command; Prometheus scrapes /metrics. Variant
builds run in sandboxed model-worker processes.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
  "${_ep_deb}/server/conffiles;${_ep_deb}/server/postinst;${_ep_deb}/server/prerm;${_ep_deb}/server/postrm")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME edgeprune-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_DESCRIPTION "edgeprune agent: pruned neural networks for an IoT gateway
The agent enrolls the gateway with an edgeprune server, reports its
hardware profile, downloads signed model variants that fit it, verifies and
hot-swaps them and serves local inference on 127.0.0.1 with telemetry back
to the server.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
  "${_ep_deb}/agent/conffiles;${_ep_deb}/agent/postinst;${_ep_deb}/agent/prerm;${_ep_deb}/agent/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
