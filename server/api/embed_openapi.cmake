# cmake -DIN=<openapi.json> -DOUT=<openapi_document.cpp> -P embed_openapi.cmake
# Writes the C++ source holding the document's bytes (api::OpenApiDocument()), run at build time
# whenever openapi.json changes, so the served document is the repository's.
file(READ "${IN}" doc)
if(doc MATCHES "\\)ep_openapi\"")
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )ep_openapi\"")
endif()
set(text "// Generated from server/api/openapi.json by server/api/embed_openapi.cmake. Do not edit.\n")
string(APPEND text "#include \"server/api/openapi_routes.hpp\"\n\nnamespace edgeprune::api {\n\n")
# A char array, not a constexpr string_view: its length comes from sizeof, not a constexpr strlen
# that a document of a few hundred KiB would exceed the compiler's loop limit with.
string(APPEND text "namespace {\nconst char kDocument[] = R\"ep_openapi(${doc})ep_openapi\";\n}  // namespace\n\n")
string(APPEND text "std::string_view OpenApiDocument() { return {kDocument, sizeof kDocument - 1}; }\n")
string(APPEND text "\n}  // namespace edgeprune::api\n")
file(WRITE "${OUT}.tmp" "${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
