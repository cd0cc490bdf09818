#include "training/data/test_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace trident::data::testing {
namespace {

namespace fs = std::filesystem;

bool HasGpt2Files(const fs::path& dir) {
  std::error_code error;
  return fs::is_regular_file(dir / "encoder.json", error) &&
         fs::is_regular_file(dir / "vocab.bpe", error);
}

}  // namespace

std::string TempPath(absl::string_view name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test_name = info == nullptr
                              ? std::string("no_test")
                              : absl::StrCat(info->test_suite_name(), ".", info->name());
  test_name = absl::StrReplaceAll(test_name, {{"/", "_"}});
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / test_name;
  fs::create_directories(dir);
  return (dir / std::string(name)).string();
}

void WriteBytes(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::optional<std::string> FindGpt2Dir() {
  if (const char* dir = std::getenv("TRIDENT_GPT2_DIR"); dir != nullptr && HasGpt2Files(dir)) {
    return std::string(dir);
  }
  if (HasGpt2Files("data/gpt2")) return std::string("data/gpt2");
  // The runfiles hold links into the source tree; follow one of this package's
  // files back to the workspace root.
  constexpr absl::string_view kAnchor = "training/data/testdata/gpt2_bpe_fixtures.tsv";
  std::error_code error;
  const fs::path anchor = fs::canonical(std::string(kAnchor), error);
  if (!error) {
    const std::string resolved = anchor.string();
    if (resolved.size() > kAnchor.size() &&
        absl::string_view(resolved).substr(resolved.size() - kAnchor.size()) == kAnchor) {
      const fs::path root = resolved.substr(0, resolved.size() - kAnchor.size());
      if (HasGpt2Files(root / "data/gpt2")) return (root / "data/gpt2").string();
    }
  }
  return std::nullopt;
}

}  // namespace trident::data::testing
