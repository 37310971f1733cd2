// atomic_file.h: whole-file reads, and writes that never leave a half-written file behind.
//
// write_file_atomic(path, bytes) writes the bytes to "<path>.tmp.<pid>" in the same directory,
// fsyncs it, renames it over `path` and fsyncs the directory. rename() within one file system
// replaces the target in one step (POSIX), so a reader sees either the old file or the complete
// new one, even if the process dies mid-write; the directory fsync makes the rename itself
// survive a power loss. On any failure the temporary file is removed and std::runtime_error
// names the path, the step that failed and strerror(errno).
//
// Checkpoints, weights and config files all go through this. Two threads of one process must
// not write the same path at the same time (they would share the temporary name).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ssm {

void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

// The whole file as bytes; std::runtime_error naming the path and strerror on failure.
std::string read_file(const std::string& path);

} // namespace ssm
