#include "core/io/test_util.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/io/file_util.h"

namespace trident::io::testing {

std::string FreshTestDir(absl::string_view name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string path = JoinPath(root != nullptr ? root : "/tmp", name);
  TRIDENT_CHECK_OK(RemoveTree(path));
  TRIDENT_CHECK_OK(MakeDirectory(path));
  return path;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TRIDENT_CHECK(in.good()) << "cannot open " << path;
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteWholeFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  TRIDENT_CHECK(out.good()) << "cannot write " << path;
}

}  // namespace trident::io::testing
