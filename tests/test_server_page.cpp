// The web page of `tiller serve` as the binary serves it: GET / and every
// /assets/<file> with its Content-Type and exactly the bytes of the file in
// src/server/page; every file of that folder built in; unknown assets 404 with an
// error object; no API key needed for the page while /v1/* wants one. The
// server's handlers run on a loopback port without a model (the page needs none).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/embedded_files.h"
#include "server/handlers.h"
#include "server/page.h"
#include "server/server_state.h"

namespace tiller::server {
namespace {

const std::filesystem::path kPageDir = TILLER_PAGE_DIR;
constexpr const char* kKey = "page-test-key";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

class ServerPage : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.options.api_key = kKey;
    register_handlers(http_, state_);
    port_ = http_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // httplib 0.11 has no wait_until_ready().
    for (int i = 0; i < 2000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(http_.is_running());
  }
  void TearDown() override {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    return client.Get(path.c_str());
  }

  ServerState state_;
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;
};

TEST(ServerPageTypes, ByExtension) {
  EXPECT_EQ(page_content_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(page_content_type("page.css"), "text/css; charset=utf-8");
  EXPECT_EQ(page_content_type("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(page_content_type("icon.svg"), "image/svg+xml");
  EXPECT_EQ(page_content_type("x.gguf"), "application/octet-stream");
  EXPECT_EQ(page_content_type(".js"), "application/octet-stream");  // a name, not only an extension
}

TEST_F(ServerPage, IndexIsServedWithoutAKey) {
  auto res = get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->body, read_file(kPageDir / "index.html"));
  // The API next to it still wants the key.
  auto models = get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
}

TEST_F(ServerPage, EveryFileOfTheFolderIsBuiltIn) {
  std::set<std::string> embedded;
  for (const EmbeddedFile& file : embedded_files()) embedded.insert(std::string(file.name));
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(kPageDir)) {
    if (entry.is_regular_file()) on_disk.insert(entry.path().filename().string());
  }
  EXPECT_EQ(embedded, on_disk) << "TILLER_PAGE_FILES in CMakeLists.txt must list every file of src/server/page";
  EXPECT_TRUE(embedded.count("index.html"));
}

TEST_F(ServerPage, EachAssetHasItsTypeAndItsBytes) {
  ASSERT_FALSE(embedded_files().empty());
  for (const EmbeddedFile& file : embedded_files()) {
    const std::string name(file.name);
    auto res = get("/assets/" + name);
    ASSERT_TRUE(res) << name;
    EXPECT_EQ(res->status, 200) << name;
    EXPECT_EQ(res->get_header_value("Content-Type"), page_content_type(name)) << name;
    EXPECT_EQ(res->body, read_file(kPageDir / name)) << name << " differs from the file: rebuild";
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff") << name;
  }
}

TEST_F(ServerPage, UnknownAssetsAreNotFound) {
  for (const std::string path : {"/assets/nothing.js", "/assets/", "/assets/../CMakeLists.txt", "/assets/a/b.js",
                                 "/index.html"}) {
    auto res = get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    const auto body = nlohmann::json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body.contains("error")) << path << ": " << res->body;
  }
}

}  // namespace
}  // namespace tiller::server
