#ifndef TRIDENT_CORE_IO_USER_PATH_H_
#define TRIDENT_CORE_IO_USER_PATH_H_

// `bazel run` starts a tool inside its runfiles tree; the directory the user
// typed the command in is $BUILD_WORKING_DIRECTORY. Relative paths on a tool's
// command line (and its relative defaults, such as data/brown) mean the user's
// directory, so tools resolve them with this.

#include <string>

#include "absl/strings/string_view.h"

namespace trident::io {

// `path` when it is absolute or empty or $BUILD_WORKING_DIRECTORY is unset;
// otherwise $BUILD_WORKING_DIRECTORY/path.
std::string ResolveUserPath(absl::string_view path);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_USER_PATH_H_
