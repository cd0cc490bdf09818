#include "core/io/user_path.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace trident::io {

std::string ResolveUserPath(absl::string_view path) {
  if (path.empty() || path.front() == '/') return std::string(path);
  const char* working_directory = std::getenv("BUILD_WORKING_DIRECTORY");
  if (working_directory == nullptr || working_directory[0] == '\0') return std::string(path);
  absl::string_view base = working_directory;
  if (base.back() == '/') base.remove_suffix(1);
  return absl::StrCat(base, "/", path);
}

}  // namespace trident::io
