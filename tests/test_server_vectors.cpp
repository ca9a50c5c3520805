// The vector registry of `tiller serve` (GET/PUT/DELETE /v1/vectors) end to end,
// on a tiny random-weight model (n_embd 64, 2 blocks), so it needs no download:
// each test starts its own server over a fresh --vector-dir. Uploads must be
// checked against the model as a steering request checks them, a refused upload
// must leave the folder as it was, a name must never leave the folder, and a
// vector uploaded by name must steer exactly as the same file put there by hand.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "support/server_process.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/control_vector.h"

namespace tiller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kWidth = 64;  // TinyModelSpec's n_embd
constexpr int kBlocks = 2;      // and n_layer
constexpr const char* kKey = "sesame";

const std::string& tiny_model_path() {
  static const std::string path = [] {
    const std::string file = (testing::scratch_dir() / "registry-model.gguf").string();
    testing::make_tiny_model({}).write(file);
    return file;
  }();
  return path;
}

ControlVector make_vector(int64_t width, std::vector<int> blocks, float value) {
  ControlVector vector;
  vector.model_hint = "llama";
  vector.n_embd = width;
  for (const int block : blocks) {
    std::vector<float> direction(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) direction[size_t(i)] = (i % 3 == 0 ? value : -0.5f * value);
    vector.directions[block] = std::move(direction);
  }
  return vector;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A control vector file's bytes, as the library writes them.
std::string vector_bytes(const ControlVector& vector) {
  const fs::path path = testing::scratch_dir() / "vector-bytes.gguf";
  write_control_vector(path.string(), vector);
  return read_bytes(path);
}

// Every entry of a folder, hidden ones included.
std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

class ServerVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    static int count = 0;
    dir_ = testing::scratch_dir() / ("registry-" + std::to_string(++count));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  void start(std::vector<std::string> extra = {}, bool with_folder = true) {
    std::vector<std::string> args = {"-m", tiny_model_path(), "-c", "256", "-t", "1", "--max-body", "20000"};
    if (with_folder) args.insert(args.end(), {"--vector-dir", dir_.string()});
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<testing::ServerProcess>(TILLER_BINARY, args);
    ASSERT_TRUE(server_->wait_ready()) << server_->log();
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(120, 0);
    c.set_url_encode(false);  // the paths are sent as written, "%2F" and ".." included
    if (!key_.empty()) c.set_bearer_token_auth(key_.c_str());
    return c;
  }
  httplib::Result get(const std::string& path) const { return client().Get(path.c_str()); }
  httplib::Result put(const std::string& name, const std::string& bytes) const {
    return client().Put(("/v1/vectors/" + name).c_str(), bytes, "application/octet-stream");
  }
  httplib::Result remove(const std::string& name) const { return client().Delete(("/v1/vectors/" + name).c_str()); }

  // The status, and the body as JSON (an error object must name `message_part`).
  static json expect(const httplib::Result& res, int status, const std::string& message_part = {}) {
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, status) << res->body;
    json body = json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body.is_object()) << res->body;
    if (status >= 400) {
      EXPECT_TRUE(body.contains("error") && body["error"]["message"].is_string()) << res->body;
      if (!message_part.empty() && body.contains("error")) {
        EXPECT_NE(body["error"]["message"].get<std::string>().find(message_part), std::string::npos) << res->body;
      }
    }
    return body;
  }

  std::string completion(const json& steering) const {
    json body = {{"prompt", "abc abc"}, {"temperature", 0}, {"max_tokens", 12}, {"ignore_eos", true}};
    if (!steering.is_null()) body["steering"] = steering;
    auto res = client().Post("/v1/completions", body.dump(), "application/json");
    const json response = expect(res, 200);
    return response.value("choices", json::array({json::object()}))[0].value("text", "");
  }

  fs::path dir_;
  std::string key_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ServerVectors, ListsNothingThenEveryVectorSortedWithItsBlocksAndNorms) {
  start();
  json list = expect(get("/v1/vectors"), 200);
  EXPECT_EQ(list["object"], "list");
  EXPECT_EQ(list["data"], json::array());

  const ControlVector b = make_vector(kWidth, {0, 1}, 2.0f), a = make_vector(kWidth, {1}, 3.0f);
  write_control_vector((dir_ / "b-two.gguf").string(), b);
  write_control_vector((dir_ / "a.one.gguf").string(), a);
  std::ofstream(dir_ / "junk.gguf") << "not a vector";
  std::ofstream(dir_ / ".hidden.gguf") << "never listed";
  std::ofstream(dir_ / "notes.txt") << "not a .gguf";
  write_control_vector((dir_ / "wide.gguf").string(), make_vector(kWidth * 2, {1}, 1.0f));

  list = expect(get("/v1/vectors"), 200);
  ASSERT_EQ(list["data"].size(), 4u) << list;
  const json& first = list["data"][0];
  EXPECT_EQ(first["id"], "a.one");
  EXPECT_EQ(first["object"], "vector");
  EXPECT_EQ(first["width"], kWidth);
  EXPECT_EQ(first["layers"], json::array({1}));
  ASSERT_EQ(first["norms"].size(), 1u);
  EXPECT_NEAR(first["norms"][0].get<double>(), testing::l2_norm(a.directions.at(1)), 1e-6);
  EXPECT_EQ(first["bytes"], fs::file_size(dir_ / "a.one.gguf"));
  EXPECT_NEAR(first["created"].get<double>(), double(std::time(nullptr)), 120.0);
  EXPECT_FALSE(first.contains("error"));

  const json& second = list["data"][1];
  EXPECT_EQ(second["id"], "b-two");
  EXPECT_EQ(second["layers"], json::array({0, 1}));
  EXPECT_NEAR(second["norms"][1].get<double>(), testing::l2_norm(b.directions.at(1)), 1e-6);

  // Files that are not usable vectors for this model are listed with why, and no more.
  EXPECT_EQ(list["data"][2]["id"], "junk");
  EXPECT_NE(list["data"][2]["error"].get<std::string>().find("not a GGUF file"), std::string::npos) << list;
  EXPECT_FALSE(list["data"][2].contains("width"));
  EXPECT_EQ(list["data"][3]["id"], "wide");
  EXPECT_NE(list["data"][3]["error"].get<std::string>().find("width 128"), std::string::npos) << list;
  // The server's paths are not in its messages.
  EXPECT_EQ(list.dump().find(dir_.string()), std::string::npos) << list;
}

TEST_F(ServerVectors, GetGivesOneVectorAndAbsentNamesAre404) {
  start();
  write_control_vector((dir_ / "calm.gguf").string(), make_vector(kWidth, {0}, 1.0f));
  const json vector = expect(get("/v1/vectors/calm"), 200);
  EXPECT_EQ(vector["id"], "calm");
  EXPECT_EQ(vector["layers"], json::array({0}));
  expect(get("/v1/vectors/storm"), 404, "storm");
}

TEST_F(ServerVectors, PutCreatesThen201ReplacesThen200) {
  start();
  const std::string first = vector_bytes(make_vector(kWidth, {1}, 1.0f));
  json created = expect(put("honest", first), 201);
  EXPECT_EQ(created["id"], "honest");
  EXPECT_EQ(created["object"], "vector");
  EXPECT_EQ(created["width"], kWidth);
  EXPECT_EQ(created["layers"], json::array({1}));
  EXPECT_EQ(created["bytes"], first.size());
  EXPECT_EQ(read_bytes(dir_ / "honest.gguf"), first);

  const std::string second = vector_bytes(make_vector(kWidth, {0, 1}, 4.0f));
  const json replaced = expect(put("honest", second), 200);
  EXPECT_EQ(replaced["layers"], json::array({0, 1}));
  EXPECT_EQ(read_bytes(dir_ / "honest.gguf"), second);
  EXPECT_EQ(expect(get("/v1/vectors/honest"), 200), replaced);
  EXPECT_EQ(entries(dir_), std::set<std::string>{"honest.gguf"});  // no temporary file left
}

TEST_F(ServerVectors, UploadsThatDoNotFitAre400AndLeaveNothing) {
  start();
  gguf::Writer other_tensor;  // a GGUF, but no direction.N
  other_tensor.set("general.architecture", std::string("controlvector"));
  const std::vector<float> values(kWidth, 1.0f);
  other_tensor.add_tensor("token_embd.weight", {kWidth}, values);
  const std::vector<uint8_t> other = other_tensor.to_bytes();
  gguf::Writer model_like;  // a model's metadata
  model_like.set("general.architecture", std::string("llama"));
  model_like.add_tensor("direction.1", {kWidth}, values);
  const std::vector<uint8_t> model_bytes = model_like.to_bytes();

  const struct Case {
    std::string what, bytes, message;
  } cases[] = {
      {"not a GGUF", "hello, I am not a control vector at all", "not a GGUF file"},
      {"empty", "", "too small"},
      {"GGUF without directions", std::string(other.begin(), other.end()), "no direction.N"},
      {"a model", std::string(model_bytes.begin(), model_bytes.end()), "not a control vector"},
      {"wrong width", vector_bytes(make_vector(kWidth + 8, {1}, 1.0f)), "width 72"},
      {"block beyond the model", vector_bytes(make_vector(kWidth, {1, kBlocks}, 1.0f)), "direction.2"},
      {"truncated", vector_bytes(make_vector(kWidth, {1}, 1.0f)).substr(0, 100), "vector 'bad'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const json error = expect(put("bad", c.bytes), 400, c.message);
    EXPECT_EQ(error["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(entries(dir_).empty());
  }
  // Nor does a refused replacement touch the vector it would have replaced.
  const std::string good = vector_bytes(make_vector(kWidth, {1}, 1.0f));
  expect(put("bad", good), 201);
  expect(put("bad", "garbage"), 400, "not a GGUF file");
  EXPECT_EQ(read_bytes(dir_ / "bad.gguf"), good);
  EXPECT_EQ(entries(dir_), std::set<std::string>{"bad.gguf"});
}

TEST_F(ServerVectors, NamesThatCouldLeaveTheFolderAre400) {
  start();
  write_control_vector((dir_ / "calm.gguf").string(), make_vector(kWidth, {0}, 1.0f));
  const std::string good = vector_bytes(make_vector(kWidth, {1}, 1.0f));
  for (const std::string name : {"a/b", "..", "..calm", "a..b", ".hidden", "", "%2E%2E%2Fcalm", "sub%2Fcalm",
                                 "sp%20ace", "../calm"}) {
    SCOPED_TRACE(name);
    expect(put(name, good), 400, "not a vector name");
    expect(get("/v1/vectors/" + name), 400, "not a vector name");
    expect(remove(name), 400, "not a vector name");
  }
  EXPECT_EQ(entries(dir_), std::set<std::string>{"calm.gguf"});
  EXPECT_EQ(entries(dir_.parent_path()).count("calm.gguf"), 0u);
}

TEST_F(ServerVectors, BodiesOverMaxBodyAre413) {
  start();
  expect(put("big", std::string(30000, 'x')), 413, "--max-body");
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(ServerVectors, DeleteThenGetIs404) {
  start();
  expect(put("gone", vector_bytes(make_vector(kWidth, {1}, 1.0f))), 201);
  const json deleted = expect(remove("gone"), 200);
  EXPECT_EQ(deleted, (json{{"id", "gone"}, {"object", "vector.deleted"}, {"deleted", true}}));
  expect(get("/v1/vectors/gone"), 404, "gone");
  expect(remove("gone"), 404, "gone");
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(ServerVectors, AnUploadedVectorSteersAsTheSameFileDoes) {
  start();
  // The tiny model's random weights make a residual stream so large (logits of
  // some 400) that only a vector of this size moves its greedy text.
  const ControlVector vector = make_vector(kWidth, {0, 1}, 1e6f);
  write_control_vector((dir_ / "by-hand.gguf").string(), vector);
  const std::string plain = completion(nullptr);
  const std::string by_hand = completion({{"control_vectors", {{{"name", "by-hand"}, {"scale", 1.0}}}}});
  ASSERT_NE(by_hand, plain) << "the vector must change the tiny model's text for this test to mean anything";

  expect(put("uploaded", vector_bytes(vector)), 201);
  EXPECT_EQ(completion({{"control_vectors", {{{"name", "uploaded"}, {"scale", 1.0}}}}}), by_hand);
  // Replaced by the opposite vector: the next request steers with the new file.
  expect(put("uploaded", vector_bytes(make_vector(kWidth, {0, 1}, -1e6f))), 200);
  EXPECT_NE(completion({{"control_vectors", {{{"name", "uploaded"}, {"scale", 1.0}}}}}), by_hand);
  // Deleted: a steering request by its name is a 404.
  expect(remove("uploaded"), 200);
  json body = {{"prompt", "abc"}, {"max_tokens", 2},
               {"steering", {{"control_vectors", {{{"name", "uploaded"}}}}}}};
  expect(client().Post("/v1/completions", body.dump(), "application/json"), 404, "uploaded");
}

TEST_F(ServerVectors, WithoutAFolderNothingIsListedAndUploadsAre400) {
  start({}, false);
  EXPECT_EQ(expect(get("/v1/vectors"), 200)["data"], json::array());
  expect(put("honest", vector_bytes(make_vector(kWidth, {1}, 1.0f))), 400, "--vector-dir");
  expect(get("/v1/vectors/honest"), 404, "--vector-dir");
  expect(remove("honest"), 404, "--vector-dir");
}

TEST_F(ServerVectors, WithAnApiKeyEveryRouteNeedsIt) {
  start({"--api-key", kKey});
  const std::string bytes = vector_bytes(make_vector(kWidth, {1}, 1.0f));
  expect(get("/v1/vectors"), 401);
  expect(put("honest", bytes), 401);
  expect(get("/v1/vectors/honest"), 401);
  expect(remove("honest"), 401);
  EXPECT_TRUE(entries(dir_).empty());
  key_ = "wrong";
  expect(put("honest", bytes), 401);
  key_ = kKey;
  expect(put("honest", bytes), 201);
  expect(get("/v1/vectors/honest"), 200);
  EXPECT_EQ(expect(get("/v1/vectors"), 200)["data"].size(), 1u);
  expect(remove("honest"), 200);
}

// Links: followed inside the folder (an alias), never out of it; a delete removes
// the link, not what it points at.
TEST_F(ServerVectors, LinksOutOfTheFolderAreNotFollowed) {
  const fs::path outside = dir_.parent_path() / ("outside-" + dir_.filename().string() + ".gguf");
  write_control_vector(outside.string(), make_vector(kWidth, {1}, 1.0f));
  write_control_vector((dir_ / "real.gguf").string(), make_vector(kWidth, {0}, 1.0f));
  fs::create_symlink(outside, dir_ / "escape.gguf");
  fs::create_symlink("real.gguf", dir_ / "alias.gguf");
  start();

  const json list = expect(get("/v1/vectors"), 200);
  ASSERT_EQ(list["data"].size(), 3u) << list;
  EXPECT_EQ(list["data"][0]["id"], "alias");
  EXPECT_EQ(list["data"][0]["layers"], json::array({0}));
  EXPECT_EQ(list["data"][1]["id"], "escape");
  EXPECT_NE(list["data"][1].value("error", "").find("out of the vector folder"), std::string::npos) << list;
  EXPECT_FALSE(list["data"][1].contains("layers"));

  json body = {{"prompt", "abc"}, {"max_tokens", 2}, {"steering", {{"control_vectors", {{{"name", "escape"}}}}}}};
  expect(client().Post("/v1/completions", body.dump(), "application/json"), 404, "out of the vector folder");
  body["steering"]["control_vectors"][0]["name"] = "alias";
  expect(client().Post("/v1/completions", body.dump(), "application/json"), 200);

  expect(remove("escape"), 200);
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / "escape.gguf")));
  // An upload over a link replaces the link, not its target.
  const std::string bytes = vector_bytes(make_vector(kWidth, {1}, 2.0f));
  expect(put("alias", bytes), 200);
  EXPECT_FALSE(fs::is_symlink(dir_ / "alias.gguf"));
  EXPECT_EQ(read_bytes(dir_ / "alias.gguf"), bytes);
  EXPECT_EQ(expect(get("/v1/vectors/real"), 200)["layers"], json::array({0}));
  fs::remove(outside);
}

// Uploads and deletes of one name racing each other, and steering requests by
// that name meanwhile: every answer is one of the documented ones, a request
// sees a whole vector or none, and no temporary file is left.
TEST_F(ServerVectors, ConcurrentUploadsAndDeletesOfOneNameAreSafe) {
  start({"--parallel", "2"});
  const std::string bytes[2] = {vector_bytes(make_vector(kWidth, {0, 1}, 1.0f)),
                                vector_bytes(make_vector(kWidth, {1}, 2.0f))};
  std::atomic<int> unexpected{0}, steered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        // Steering requests and deletes may find no vector (404); uploads create or replace it.
        const int ok_a = 200, ok_b = t == 3 || (i + t) % 3 == 0 ? 404 : 201;
        const httplib::Result res = [&] {
          if (t == 3) {
            const json body = {{"prompt", "abc"}, {"max_tokens", 1},
                               {"steering", {{"control_vectors", {{{"name", "race"}}}}}}};
            return client().Post("/v1/completions", body.dump(), "application/json");
          }
          if ((i + t) % 3 == 0) return remove("race");
          return put("race", bytes[(i + t) % 2]);
        }();
        if (t == 3 && res && res->status == 200) ++steered;
        if (!res || (res->status != ok_a && res->status != ok_b)) {
          ++unexpected;
          ADD_FAILURE() << "thread " << t << ": " << (res ? std::to_string(res->status) + " " + res->body : "no answer");
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(unexpected.load(), 0);
  std::cout << "[ info ] steering requests that found the vector: " << steered.load() << " of 25\n";
  const auto left = entries(dir_);
  EXPECT_TRUE(left.empty() || left == std::set<std::string>{"race.gguf"});
  if (!left.empty()) {
    const std::string now = read_bytes(dir_ / "race.gguf");
    EXPECT_TRUE(now == bytes[0] || now == bytes[1]);
  }
}

}  // namespace
}  // namespace tiller
