// The control vectors of the server's --vector-dir, as the vector endpoints and
// steering requests see them: a vector's name is a file's name in the folder
// without ".gguf" (tiller::is_vector_name), checked against the served model the
// way a steering request checks it (width n_embd, blocks within the model).
//
// The folder is the only state: nothing is cached, so a file an operator copies
// in is seen by the next request. An upload is validated in memory, written to a
// hidden file in the folder (a leading '.', which no name can reach), flushed,
// then renamed over the name: a steering request reads the old file or the new
// one, never half of one, and a failed upload leaves nothing. A request that
// compiled a vector keeps it after the file is replaced or deleted.
//
// Symbolic links: a name whose file is a link is followed only when the link's
// final target is a regular file inside the folder (an alias such as
// happy.gguf -> happy-v3.gguf); a link leading out of the folder is listed with an
// error and resolves for no steering request. An upload or a delete replaces or
// removes the link itself, never its target.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/model.h"
#include "tiller/steering_spec.h"

namespace tiller::server {

// One entry of GET /v1/vectors. When `error` is set the file is not a usable
// control vector for this model and only `name` is meaningful.
struct VectorInfo {
  std::string name;
  int64_t width = 0;
  std::vector<int> layers;    // blocks with a direction, ascending
  std::vector<double> norms;  // each of those directions' L2 norm
  uint64_t bytes = 0;
  int64_t created = 0;  // the file's modification time, Unix seconds
  std::string error;
};

class VectorRegistry {
 public:
  // An empty `dir`: a server without --vector-dir (lists nothing, takes no upload).
  VectorRegistry(std::filesystem::path dir, std::shared_ptr<const Model> model);

  bool has_folder() const { return !dir_.empty(); }

  // Every "<name>.gguf" of the folder whose name is a vector name, sorted by name.
  std::vector<VectorInfo> list() const;
  // Nullopt when there is no such vector. Throws ApiError 400 for a bad name.
  std::optional<VectorInfo> get(std::string_view name) const;

  struct Stored {
    VectorInfo info;
    bool replaced = false;  // a vector of that name existed (200), or not (201)
  };
  // Throws ApiError 400 for a bad name, a server without a folder, bytes that are
  // not a control vector or one that does not fit the model; 500 when the
  // folder cannot be written.
  Stored put(std::string_view name, std::string_view bytes);
  // False when there was no such vector. Throws ApiError 400 for a bad name.
  bool remove(std::string_view name);

  // For steering requests: the file a name stands for. Throws ApiError 404 (no
  // folder, no such vector, a link leading out of the folder) or 400 (a bad name).
  std::string path_of(std::string_view name) const;
  // The same as a library resolver, for compile_steering (ActAdd files by name).
  VectorResolver resolver() const;
  // For one compile_steering call: each control vector read once, from the file
  // opened at that moment (a concurrent upload gives the old or the new vector,
  // a concurrent delete an ApiError 404, never a half-read file). Messages name
  // the vector, not the server's path.
  VectorLookup lookup() const;

 private:
  // Where the name's file is to be read, or why it cannot be (nullopt: absent).
  struct Resolved {
    std::filesystem::path path;
    std::string error;
  };
  std::optional<Resolved> resolve(std::string_view name) const;
  VectorInfo describe(const std::string& name, const Resolved& file) const;
  VectorInfo check(const std::string& name, std::span<const uint8_t> bytes) const;

  std::filesystem::path dir_;  // canonical
  std::shared_ptr<const Model> model_;
  // Serializes the look at whether a name exists with the rename or unlink that
  // follows, so that concurrent uploads and deletes of one name each report what
  // they did (created, replaced, deleted) truthfully.
  mutable std::mutex write_mutex_;
};

}  // namespace tiller::server
