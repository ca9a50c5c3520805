#include "server/vector_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "server/api_error.h"
#include "tiller/control_vector.h"
#include "tiller/error.h"

namespace tiller::server {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSuffix = ".gguf";

std::string label_of(std::string_view name) { return "vector '" + std::string(name) + "'"; }

void check_name(std::string_view name) {
  if (!is_vector_name(name)) {
    throw bad_request("'" + std::string(name) +
                          "' is not a vector name (letters, digits, '-', '_' and '.', not starting with '.', no "
                          "'..', at most 200 characters)",
                      "name");
  }
}

// The checks a steering request makes (compile_steering's: width n_embd, blocks
// within the model), run by compiling the vector as a request would, so that the
// two can never disagree. Throws tiller::Error naming the vector.
void check_fits(const std::shared_ptr<const ControlVector>& vector, std::string_view name,
                const std::shared_ptr<const Model>& model) {
  SteeringSpec spec;
  spec.control_vectors.push_back({{"", std::string(name)}, 1.0f, std::nullopt});
  CompileOptions options;
  options.lookup_name = [&vector](std::string_view) { return vector; };
  compile_steering(spec, model, options);
}

VectorInfo summary(std::string_view name, const ControlVector& vector) {
  VectorInfo info;
  info.name = name;
  info.width = vector.n_embd;
  for (const auto& [block, direction] : vector.directions) {
    double sum = 0.0;
    for (const float x : direction) sum += double(x) * double(x);
    info.layers.push_back(block);
    info.norms.push_back(std::sqrt(sum));
  }
  return info;
}

// A library message names the file by its path; the client knows it by name,
// and the server's paths are none of its business.
std::string named(std::string message, const std::string& path, std::string_view name) {
  if (message.rfind(path, 0) == 0) message.replace(0, path.size(), label_of(name));
  return message;
}

std::string random_suffix() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (int i = 0; i < 16; ++i) text += kDigits[random() % 16];
  return text;
}

ApiError folder_error(const std::string& what) {
  return ApiError(500, "server_error", "the vector folder: " + what + ": " + std::strerror(errno));
}

// Writes `bytes` to a new file and flushes it to disk, so that the rename that
// follows never publishes a file whose data a crash could lose. Returns its stat.
struct stat write_new_file(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw folder_error("cannot create a file");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const ApiError error = folder_error("cannot write");
      ::close(fd);
      ::unlink(path.c_str());
      throw error;
    }
    written += size_t(n);
  }
  struct stat info {};
  if (::fsync(fd) != 0 || ::fstat(fd, &info) != 0) {
    const ApiError error = folder_error("cannot flush an upload");
    ::close(fd);
    ::unlink(path.c_str());
    throw error;
  }
  ::close(fd);
  return info;
}

// The rename itself survives a crash once the folder is flushed; a failure here
// only weakens that, so it is not reported.
void flush_folder(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

VectorRegistry::VectorRegistry(fs::path dir, std::shared_ptr<const Model> model) : model_(std::move(model)) {
  // Canonical, so that where a link leads can be compared with it.
  if (!dir.empty()) dir_ = fs::canonical(dir);
}

std::optional<VectorRegistry::Resolved> VectorRegistry::resolve(std::string_view name) const {
  check_name(name);
  if (!has_folder()) return std::nullopt;
  const fs::path path = dir_ / (std::string(name) + std::string(kSuffix));
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (error || !fs::exists(status)) return std::nullopt;
  if (fs::is_symlink(status)) {
    const fs::path target = fs::canonical(path, error);
    if (error) return Resolved{{}, "a symbolic link to nothing"};
    const fs::path inside = target.lexically_relative(dir_);
    if (inside.empty() || *inside.begin() == "..") {
      return Resolved{{}, "a symbolic link out of the vector folder, which the server does not follow"};
    }
    if (!fs::is_regular_file(target, error)) return Resolved{{}, "a symbolic link to something that is not a file"};
    return Resolved{target, {}};
  }
  if (!fs::is_regular_file(status)) return Resolved{{}, "not a regular file"};
  return Resolved{path, {}};
}

VectorInfo VectorRegistry::describe(const std::string& name, const Resolved& file) const {
  VectorInfo info;
  info.name = name;
  if (!file.error.empty()) {
    info.error = label_of(name) + ": " + file.error;
    return info;
  }
  struct stat status {};
  if (::stat(file.path.c_str(), &status) != 0) {
    info.error = label_of(name) + ": " + std::strerror(errno);
    return info;
  }
  try {
    const auto vector = std::make_shared<const ControlVector>(read_control_vector(file.path.string()));
    check_fits(vector, name, model_);
    info = summary(name, *vector);
  } catch (const Error& error) {
    info.error = named(error.what(), file.path.string(), name);
  }
  info.bytes = uint64_t(status.st_size);
  info.created = int64_t(status.st_mtime);
  return info;
}

std::vector<VectorInfo> VectorRegistry::list() const {
  std::vector<VectorInfo> out;
  if (!has_folder()) return out;
  std::error_code error;
  for (fs::directory_iterator it(dir_, error), end; !error && it != end; it.increment(error)) {
    const std::string file = it->path().filename().string();
    if (file.size() <= kSuffix.size() || !file.ends_with(kSuffix)) continue;
    const std::string name = file.substr(0, file.size() - kSuffix.size());
    if (!is_vector_name(name)) continue;  // hidden files: uploads in progress, among others
    if (const auto resolved = resolve(name)) out.push_back(describe(name, *resolved));
  }
  if (error) throw ApiError(500, "server_error", "the vector folder cannot be read: " + error.message());
  std::sort(out.begin(), out.end(), [](const VectorInfo& a, const VectorInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<VectorInfo> VectorRegistry::get(std::string_view name) const {
  const auto resolved = resolve(name);
  if (!resolved) return std::nullopt;
  return describe(std::string(name), *resolved);
}

VectorInfo VectorRegistry::check(const std::string& name, std::span<const uint8_t> bytes) const {
  try {
    const auto vector = std::make_shared<const ControlVector>(parse_control_vector(bytes, label_of(name)));
    check_fits(vector, name, model_);
    return summary(name, *vector);
  } catch (const Error& error) {
    throw bad_request(error.what(), "body");
  }
}

VectorRegistry::Stored VectorRegistry::put(std::string_view name, std::string_view bytes) {
  check_name(name);
  if (!has_folder()) {
    throw bad_request("this server keeps no vectors: start it with --vector-dir DIR to take uploads");
  }
  const std::string key(name);
  Stored stored;
  stored.info = check(key, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});

  // A leading '.': no name reaches it, so neither a listing nor a request sees it.
  const fs::path temporary = dir_ / (".upload-" + key + "-" + random_suffix());
  const struct stat written = write_new_file(temporary, bytes);
  stored.info.bytes = uint64_t(written.st_size);
  stored.info.created = int64_t(written.st_mtime);

  const fs::path path = dir_ / (key + std::string(kSuffix));
  {
    std::lock_guard lock(write_mutex_);
    struct stat existing {};
    stored.replaced = ::lstat(path.c_str(), &existing) == 0;
    if (stored.replaced && S_ISDIR(existing.st_mode)) {
      ::unlink(temporary.c_str());
      throw bad_request(label_of(name) + ": the vector folder holds a folder of that name, which an upload does not "
                                         "replace");
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
      const ApiError error = folder_error("cannot rename an upload into place");
      ::unlink(temporary.c_str());
      throw error;
    }
  }
  flush_folder(dir_);
  return stored;
}

bool VectorRegistry::remove(std::string_view name) {
  check_name(name);
  if (!has_folder()) return false;
  const fs::path path = dir_ / (std::string(name) + std::string(kSuffix));
  std::lock_guard lock(write_mutex_);
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) != 0) return false;
  if (S_ISDIR(existing.st_mode)) {
    throw bad_request(label_of(name) + ": the vector folder holds a folder of that name, which is not deleted");
  }
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    throw folder_error("cannot delete " + label_of(name));
  }
  flush_folder(dir_);
  return true;
}

std::string VectorRegistry::path_of(std::string_view name) const {
  if (!has_folder()) {
    throw not_found("no vector named '" + std::string(name) + "': the server was started without --vector-dir",
                    "steering");
  }
  const auto resolved = resolve(name);
  if (!resolved) throw not_found("no vector named '" + std::string(name) + "' in the server's vector folder", "steering");
  if (!resolved->error.empty()) throw not_found(label_of(name) + ": " + resolved->error, "steering");
  return resolved->path.string();
}

VectorResolver VectorRegistry::resolver() const {
  return [this](std::string_view name) {
    try {
      return path_of(name);
    } catch (const ApiError& error) {
      throw Error(error.what());  // compile_steering speaks tiller::Error
    }
  };
}

VectorLookup VectorRegistry::lookup() const {
  auto read = std::make_shared<std::map<std::string, std::shared_ptr<const ControlVector>, std::less<>>>();
  return [this, read](std::string_view name) -> std::shared_ptr<const ControlVector> {
    if (const auto it = read->find(name); it != read->end()) return it->second;
    // Uploads and deletes may race the read. A failed read looks again: deleted
    // meanwhile, the name is absent (path_of answers 404, as it would a moment
    // later); deleted and uploaded again, the new file is read. A few times at most,
    // since a file that is simply bad fails every time.
    constexpr int kAttempts = 4;
    for (int attempt = 1;; ++attempt) {
      const std::string path = path_of(name);
      try {
        auto vector = std::make_shared<const ControlVector>(read_control_vector(path));
        read->emplace(std::string(name), vector);
        return vector;
      } catch (const Error& error) {
        if (attempt < kAttempts) continue;
        if (!resolve(name)) path_of(name);
        throw Error(named(error.what(), path, name));
      }
    }
  };
}

}  // namespace tiller::server
