# Generates a C++ source holding every migration as a string literal.
# Usage: cmake -DOUT=<file.cc> -DFILES="a.sql,b.sql" -P embed_migrations.cmake
string(REPLACE "," ";" FILES "${FILES}")
set(body "// Generated from migrations/*.sql by cmake/embed_migrations.cmake. Do not edit.\n#include \"store/migrations.h\"\n\nnamespace retort {\nconst std::vector<Migration>& Migrations() {\n  static const std::vector<Migration> kAll = {\n")
foreach(f IN LISTS FILES)
  get_filename_component(name "${f}" NAME_WE)
  string(REGEX MATCH "^[0-9]+" num "${name}")
  math(EXPR num "${num}")
  file(READ "${f}" sql)
  string(APPEND body "    {${num}, \"${name}\", R\"retortsql(${sql})retortsql\"},\n")
endforeach()
string(APPEND body "  };\n  return kAll;\n}\n}  // namespace retort\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
