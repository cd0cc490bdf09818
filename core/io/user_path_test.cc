#include "core/io/user_path.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace trident::io {
namespace {

TEST(UserPathTest, RelativePathsMeanTheUsersDirectoryUnderBazelRun) {
  ASSERT_EQ(unsetenv("BUILD_WORKING_DIRECTORY"), 0);
  EXPECT_EQ(ResolveUserPath("data/brown"), "data/brown");
  ASSERT_EQ(setenv("BUILD_WORKING_DIRECTORY", "", 1), 0);
  EXPECT_EQ(ResolveUserPath("data/brown"), "data/brown");
  ASSERT_EQ(setenv("BUILD_WORKING_DIRECTORY", "/home/user/trident/", 1), 0);
  EXPECT_EQ(ResolveUserPath("data/brown"), "/home/user/trident/data/brown");
  EXPECT_EQ(ResolveUserPath("/abs/path"), "/abs/path");
  EXPECT_EQ(ResolveUserPath(""), "");
  ASSERT_EQ(setenv("BUILD_WORKING_DIRECTORY", "/home/user", 1), 0);
  EXPECT_EQ(ResolveUserPath("x.txt"), "/home/user/x.txt");
  ASSERT_EQ(unsetenv("BUILD_WORKING_DIRECTORY"), 0);
}

}  // namespace
}  // namespace trident::io
