# Generates a C++ source holding the dashboard's static files (src/service/dashboard/) as
# string literals: the page is served from the binary, no file beside it.
# Usage: cmake -DDIR=<dashboard dir> -DOUT=<file.cc> -P embed_dashboard.cmake
set(body "// Generated from src/service/dashboard/ by cmake/embed_dashboard.cmake. Do not edit.\n")
string(APPEND body "#include \"service/dashboard_assets.h\"\n\nnamespace retort {\n")
string(APPEND body "const std::vector<DashboardAsset>& DashboardAssets() {\n  static const std::vector<DashboardAsset> kAssets = {\n")
# One file: the path it is served at, its name in DIR, its Content-Type.
function(embed path file type)
  file(READ "${DIR}/${file}" text)
  string(FIND "${text}" ")retortui\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${DIR}/${file} contains the raw-string delimiter )retortui\"")
  endif()
  string(APPEND body "      {\"${path}\", \"${type}\", R\"retortui(${text})retortui\"},\n")
  set(body "${body}" PARENT_SCOPE)
endfunction()
embed("/" "index.html" "text/html; charset=utf-8")
embed("/ui/app.js" "app.js" "text/javascript; charset=utf-8")
embed("/ui/app.css" "app.css" "text/css; charset=utf-8")
embed("/ui/icon.svg" "icon.svg" "image/svg+xml")
string(APPEND body "  };\n  return kAssets;\n}\n}  // namespace retort\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
