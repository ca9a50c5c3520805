// `tiller serve` end to end on the default model: a real process on a free
// loopback port, spoken to over HTTP. Greedy answers must equal `tiller run`'s,
// streams must add up to the whole answer, steering must change the text, and
// every kind of bad request must get its OpenAI error object and status.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/server_process.h"
#include "support/test_files.h"
#include "tiller/control_vector.h"
#include "tiller/model.h"

namespace tiller {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kModel = "smollm2-135m-instruct";
constexpr int kContext = 512;

std::filesystem::path vector_dir() { return testing::scratch_dir() / "server-vectors"; }

// A control vector for this model: one direction, large enough to move greedy
// text, at the middle blocks.
void write_vectors(const std::string& model_path) {
  std::filesystem::create_directories(vector_dir());
  const auto model = Model::load(model_path);
  const int64_t width = model->config().n_embd;
  ControlVector vector;
  vector.n_embd = width;
  for (int block = 10; block < 20; ++block) {
    std::vector<float> direction(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) direction[size_t(i)] = (i % 3 == 0 ? 1.0f : -0.5f);
    vector.directions[block] = std::move(direction);
  }
  write_control_vector((vector_dir() / "push.gguf").string(), vector);
  ControlVector narrow;  // another model's width
  narrow.n_embd = 16;
  narrow.directions[1] = std::vector<float>(16, 1.0f);
  write_control_vector((vector_dir() / "narrow.gguf").string(), narrow);
}

// The SSE stream's JSON objects, checking the framing: "data: " lines, blank lines
// between, "[DONE]" last.
std::vector<json> sse_objects(const std::string& body) {
  std::vector<json> objects;
  std::istringstream in(body);
  std::string line;
  bool done = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EXPECT_FALSE(done) << "data after [DONE]: " << line;
    EXPECT_EQ(line.rfind("data: ", 0), 0u) << line;
    const std::string data = line.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    objects.push_back(json::parse(data));
  }
  EXPECT_TRUE(done) << body;
  return objects;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ = testing::real_model_path(kModel);
    if (model_path_.empty()) return;
    write_vectors(model_path_);
    server_ = testing::start_suite_server(model_path_, {"--parallel", "2", "-c", std::to_string(kContext),
                                                  "-t", "2", "--vector-dir", vector_dir().string(), "--max-body", "20000"});
  }
  static void TearDownTestSuite() {
    testing::stop_suite_server(server_);
  }
  void SetUp() override {
    TILLER_REQUIRE_MODEL(path, kModel);
    ASSERT_TRUE(server_);
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(300, 0);
    return c;
  }
  static httplib::Result post(const std::string& path, const std::string& body) {
    return client().Post(path.c_str(), body, "application/json");
  }
  static json post_json(const std::string& path, const json& body, int status = 200) {
    auto res = post(path, body.dump());
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, status) << res->body;
    return json::parse(res->body);
  }
  static json chat(const std::string& prompt, json extra = json::object()) {
    json body = {{"model", kModel}, {"messages", {{{"role", "user"}, {"content", prompt}}}}, {"temperature", 0},
                 {"max_tokens", 24}};
    body.update(extra);
    return body;
  }

  static std::string run_text(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {TILLER_BINARY, "run", "-m", model_path_, "-c", std::to_string(kContext)};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto result = testing::run_process(argv);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::string out = result.out;
    if (!out.empty() && out.back() == '\n') out.pop_back();  // run ends its text with one
    return out;
  }

  // The error a request gets: its status and OpenAI's error object.
  static void expect_error(const std::string& path, const std::string& body, int status,
                           const std::string& message_part = {}) {
    auto res = post(path, body);
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, status) << body.substr(0, 200) << "\n" << res->body;
    const json error = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(error.is_object() && error.contains("error")) << res->body;
    EXPECT_TRUE(error["error"]["message"].is_string());
    EXPECT_TRUE(error["error"]["type"].is_string());
    if (!message_part.empty()) {
      EXPECT_NE(error["error"]["message"].get<std::string>().find(message_part), std::string::npos) << res->body;
    }
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ServerTest, HealthAndModels) {
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200);
  const json list = json::parse(models->body);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], kModel);
  EXPECT_EQ(list["data"][0]["object"], "model");
  // The web page sizes its block sliders by the model's shape.
  EXPECT_EQ(list["data"][0]["meta"], json({{"n_layer", 30}, {"n_embd", 576}, {"n_ctx", kContext}}));
}

TEST_F(ServerTest, GreedyChatEqualsRun) {
  const std::string prompt = "What is the capital of France?";
  const json response = post_json("/v1/chat/completions", chat(prompt));
  EXPECT_EQ(response["object"], "chat.completion");
  EXPECT_EQ(response["model"], kModel);
  EXPECT_EQ(response["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  const std::string text = response["choices"][0]["message"]["content"];
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text, run_text({"--chat", "--temp", "0", "-n", "24", "-p", prompt}));
  EXPECT_GT(response["usage"]["prompt_tokens"].get<int>(), 5);
  EXPECT_GT(response["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(response["usage"]["total_tokens"].get<int>(),
            response["usage"]["prompt_tokens"].get<int>() + response["usage"]["completion_tokens"].get<int>());
}

TEST_F(ServerTest, GreedyCompletionEqualsRun) {
  const std::string prompt = "The three primary colours are";
  const json body = {{"prompt", prompt}, {"temperature", 0}, {"max_tokens", 16}};
  const json response = post_json("/v1/completions", body);
  EXPECT_EQ(response["object"], "text_completion");
  EXPECT_EQ(response["choices"][0]["text"], run_text({"--temp", "0", "-n", "16", "-p", prompt}));
  EXPECT_EQ(response["choices"][0]["finish_reason"], "length");
}

TEST_F(ServerTest, StreamAddsUpToTheWholeAnswer) {
  const std::string prompt = "Name a fruit and say why you like it.";
  const std::string whole = post_json("/v1/chat/completions", chat(prompt))["choices"][0]["message"]["content"];
  auto res = post("/v1/chat/completions",
                  chat(prompt, {{"stream", true}, {"stream_options", {{"include_usage", true}}}}).dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<json> chunks = sse_objects(res->body);
  ASSERT_GE(chunks.size(), 3u);
  std::string text;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const json& chunk = chunks[i];
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    EXPECT_EQ(chunk["id"], chunks[0]["id"]);
    EXPECT_TRUE(chunk["usage"].is_null());
    ASSERT_EQ(chunk["choices"].size(), 1u);
    const json& delta = chunk["choices"][0]["delta"];
    if (i == 0) {
      EXPECT_EQ(delta["role"], "assistant");
    }
    if (delta.contains("content")) text += delta["content"].get<std::string>();
    const bool last_choice_chunk = i + 2 == chunks.size();
    EXPECT_EQ(chunk["choices"][0]["finish_reason"].is_null(), !last_choice_chunk) << chunk;
  }
  EXPECT_EQ(text, whole);
  const json& usage_chunk = chunks.back();
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_GT(usage_chunk["usage"]["completion_tokens"].get<int>(), 0);

  // A text completion streams as text_completion chunks.
  auto text_res = post("/v1/completions",
                       json{{"prompt", "Once upon a time"}, {"temperature", 0}, {"max_tokens", 8}, {"stream", true}}.dump());
  ASSERT_TRUE(text_res);
  std::string streamed;
  for (const json& chunk : sse_objects(text_res->body)) {
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_FALSE(chunk.contains("usage"));
    streamed += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(streamed, post_json("/v1/completions", json{{"prompt", "Once upon a time"}, {"temperature", 0},
                                                          {"max_tokens", 8}})["choices"][0]["text"]);
}

TEST_F(ServerTest, SteeringChangesTheTextAndCompareGivesBoth) {
  const std::string prompt = "Tell me about your day.";
  const json steering = {{"control_vectors", {{{"name", "push"}, {"scale", 4.0}}}}};
  const std::string plain = post_json("/v1/chat/completions", chat(prompt))["choices"][0]["message"]["content"];
  const json steered_response = post_json("/v1/chat/completions", chat(prompt, {{"steering", steering}}));
  const std::string steered = steered_response["choices"][0]["message"]["content"];
  EXPECT_NE(steered, plain);

  // Sampled, not greedy: compare gives, with the request's seed, the steered text
  // (choice 0) and the unsteered one (choice 1), each what it is alone.
  const json sampling = {{"temperature", 0.9}, {"seed", 1234}, {"max_tokens", 16}};
  json alone_plain = chat(prompt, sampling), alone_steered = chat(prompt, sampling), both = chat(prompt, sampling);
  alone_steered["steering"] = steering;
  both["steering"] = steering;
  both["compare"] = true;
  const std::string expected_plain = post_json("/v1/chat/completions", alone_plain)["choices"][0]["message"]["content"];
  const std::string expected_steered =
      post_json("/v1/chat/completions", alone_steered)["choices"][0]["message"]["content"];
  EXPECT_NE(expected_plain, expected_steered);
  const json compared = post_json("/v1/chat/completions", both);
  ASSERT_EQ(compared["choices"].size(), 2u) << compared;
  EXPECT_EQ(compared["seed"], 1234);
  EXPECT_EQ(compared["choices"][0]["steered"], true);
  EXPECT_EQ(compared["choices"][1]["steered"], false);
  EXPECT_EQ(compared["choices"][0]["message"]["content"], expected_steered);
  EXPECT_EQ(compared["choices"][1]["message"]["content"], expected_plain);

  // Streamed, the two choices interleave, each adding up to its text.
  both["stream"] = true;
  auto res = post("/v1/chat/completions", both.dump());
  ASSERT_TRUE(res);
  std::string texts[2];
  int finished = 0;
  for (const json& chunk : sse_objects(res->body)) {
    const json& choice = chunk["choices"][0];
    const int index = choice["index"];
    ASSERT_TRUE(index == 0 || index == 1) << chunk;
    if (choice["delta"].contains("content")) texts[index] += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) ++finished;
  }
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(texts[0], expected_steered);
  EXPECT_EQ(texts[1], expected_plain);
}

TEST_F(ServerTest, BadRequestsGetOpenAIErrors) {
  const std::string chat_path = "/v1/chat/completions";
  const auto with = [](const json& extra) { return chat("Hi", extra).dump(); };
  expect_error(chat_path, "{\"messages\": [", 400, "not valid JSON");
  expect_error(chat_path, "[1]", 400);
  expect_error(chat_path, with({{"temperature", "warm"}}), 400, "temperature");
  expect_error(chat_path, with({{"max_tokens", -2}}), 400, "max_tokens");
  expect_error("/v1/completions", json{{"prompt", 5}}.dump(), 400, "prompt");
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "push"}}}}, {"colour", 1}}}}), 400,
               "colour");
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "push"}, {"scale", "big"}}}}}}}), 400);
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "nobody"}}}}}}}), 404, "nobody");
  expect_error(chat_path, with({{"steering", {{"ablate", {{{"name", "missing"}}}}}}}), 404, "missing");
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "../server-vectors/push"}}}}}}}), 400);
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "a/b"}}}}}}}), 400);
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "..push"}}}}}}}), 400);
  const std::string outside = (vector_dir() / "push.gguf").string();
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"path", outside}}}}}}}), 400, "name");
  expect_error(chat_path, with({{"steering", {{"control_vectors", {{{"name", "narrow"}}}}}}}), 400);  // width 16
  expect_error(chat_path, with({{"compare", true}}), 400, "compare");
  // A body over --max-body (20000 bytes).
  expect_error(chat_path, chat(std::string(30000, 'a')).dump(), 413, "--max-body");
  // A prompt longer than the context (512): the message gives both counts.
  std::string long_prompt;
  for (int i = 0; i < 700; ++i) long_prompt += "word ";
  auto res = post(chat_path, chat(long_prompt).dump());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  const std::string message = json::parse(res->body)["error"]["message"];
  EXPECT_NE(message.find("context holds 512"), std::string::npos) << message;
  EXPECT_NE(message.find("the prompt has 7"), std::string::npos) << message;
  // No such endpoint.
  auto missing = client().Get("/v1/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(json::parse(missing->body).contains("error"));
  // The server is still well after all that.
  EXPECT_FALSE(post_json(chat_path, chat("Hi"))["choices"][0]["message"]["content"].get<std::string>().empty());
}

// A raw connection that streams a long generation and can be dropped mid-stream.
// Continuous batching with --parallel 8: a request's text, with its seed, is the
// same alone as beside seven others decoding in the same forward passes (steered
// by other vectors, by ActAdd, or not at all, with other seeds and lengths).
class BatchedServerTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    model_path_ = testing::real_model_path(kModel);
    if (model_path_.empty()) return;
    write_vectors(model_path_);
    batched_ = testing::start_suite_server(model_path_, {"--parallel", "8", "-c", std::to_string(kContext),
                                                  "-t", "2", "--vector-dir", vector_dir().string()});
  }
  static void TearDownTestSuite() {
    testing::stop_suite_server(batched_);
  }
  void SetUp() override {
    TILLER_REQUIRE_MODEL(path, kModel);
    ASSERT_TRUE(batched_);
  }
  static std::string text_of(const json& body) {
    httplib::Client c("127.0.0.1", batched_->port());
    c.set_read_timeout(300, 0);
    auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
    if (!res) return "<no answer>";
    if (res->status != 200) return "<" + std::to_string(res->status) + "> " + res->body;
    return json::parse(res->body)["choices"][0]["message"]["content"];
  }
  static inline std::unique_ptr<testing::ServerProcess> batched_;
};

TEST_F(BatchedServerTest, ARequestGivesTheSameTextAloneOrBesideSevenOthers) {
  const json sampling = {{"temperature", 0.9}, {"seed", 77}, {"max_tokens", 40}, {"ignore_eos", true}};
  json steered = chat("Describe a walk in the forest.", sampling);
  steered["steering"] = {{"control_vectors", {{{"name", "push"}, {"scale", 4.0}}}}};
  const json plain = chat("Describe a walk in the forest.", sampling);
  // The others: longer, so that they are decoding when the request under test
  // arrives and after it ends.
  std::vector<json> others;
  const char* prompts[] = {"Tell me a joke.", "What is 2 + 2?", "Write a haiku about rain.", "Who wrote Hamlet?",
                           "List three animals.", "Why is the sky blue?", "Say hello in French."};
  for (int i = 0; i < 7; ++i) {
    json other = chat(prompts[i], {{"temperature", 0.7}, {"seed", 1000 + i}, {"max_tokens", 80}, {"ignore_eos", true}});
    if (i % 3 == 0) other["steering"] = {{"control_vectors", {{{"name", "push"}, {"scale", -3.0 - i}}}}};
    if (i % 3 == 1) other["steering"] = {{"actadd", {{{"positive", "Love"}, {"negative", "Hate"}, {"layer", 6}, {"coef", 5}}}}};
    others.push_back(other);
  }
  for (const json& request : {steered, plain}) {
    const std::string alone = text_of(request);
    ASSERT_FALSE(alone.empty());
    ASSERT_NE(alone.front(), '<') << alone;
    std::vector<std::string> other_texts(others.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < others.size(); ++i) {
      threads.emplace_back([&, i] { other_texts[i] = text_of(others[i]); });
    }
    std::this_thread::sleep_for(300ms);  // the others' prompts run and their steps begin
    const std::string beside = text_of(request);
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(beside, alone) << request.dump();
    for (const std::string& text : other_texts) EXPECT_NE(text.front(), '<') << text;
  }
}

class RawStream {
 public:
  RawStream(int port, const std::string& body, const std::string& key) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw std::runtime_error("connect");
    const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Authorization: Bearer " + key + "\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\n\r\n" + body;
    if (::send(fd_, request.data(), request.size(), 0) != ssize_t(request.size())) throw std::runtime_error("send");
  }
  ~RawStream() { close(); }
  // Reads until `text` has arrived; false if the connection ends first.
  const std::string& received() const { return received_; }
  bool read_until(const std::string& text) {
    char buffer[4096];
    while (received_.find(text) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      received_.append(buffer, size_t(n));
    }
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::string received_;
};

// One slot, no queue, an API key: the server's refusals and its slot handling.
class BusyServerTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    model_path_ = testing::real_model_path(kModel);
    if (model_path_.empty()) return;
    busy_ = testing::start_suite_server(model_path_, {"--parallel", "1", "--queue", "0", "-c", "4096",
                                                  "-t", "2", "--api-key", kKey});
  }
  static void TearDownTestSuite() {
    testing::stop_suite_server(busy_);
  }
  void SetUp() override {
    TILLER_REQUIRE_MODEL(path, kModel);
    ASSERT_TRUE(busy_);
  }
  static httplib::Result post_with_key(const std::string& key, const json& body) {
    httplib::Client c("127.0.0.1", busy_->port());
    c.set_read_timeout(300, 0);
    httplib::Headers headers;
    if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
    return c.Post("/v1/completions", headers, body.dump(), "application/json");
  }
  // A short request, retried for up to 10 s while the one slot is still taken: its last status.
  static int status_once_the_slot_frees();
  static constexpr const char* kKey = "sesame";
  static inline std::unique_ptr<testing::ServerProcess> busy_;
};

const json kShort = {{"prompt", "Hello"}, {"max_tokens", 2}, {"temperature", 0}};

int BusyServerTest::status_once_the_slot_frees() {
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (std::chrono::steady_clock::now() - start < 10s) {
    const auto res = post_with_key(kKey, kShort);
    status = res ? res->status : -1;
    if (status == 200) break;
    std::this_thread::sleep_for(50ms);
  }
  return status;
}
const json kLong = {{"prompt", "Once upon a time"}, {"max_tokens", 4000}, {"ignore_eos", true}, {"stream", true}};

TEST_F(BusyServerTest, ApiKey) {
  for (const std::string key : {"", "sesam", "sesame2", "wrong"}) {
    auto res = post_with_key(key, kShort);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << key;
    EXPECT_EQ(json::parse(res->body)["error"]["type"], "authentication_error");
  }
  auto ok = post_with_key(kKey, kShort);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  // The health check is for load balancers: no key.
  httplib::Client c("127.0.0.1", busy_->port());
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(BusyServerTest, FullQueueIs503AndADroppedStreamFreesItsSlot) {
  RawStream stream(busy_->port(), kLong.dump(), kKey);
  ASSERT_TRUE(stream.read_until("data: ")) << busy_->log();
  // The one slot is taken and nothing may wait.
  auto refused = post_with_key(kKey, kShort);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(refused->body)["error"]["type"], "server_busy");
  // Dropping the stream cancels its generation (4000 tokens would take far longer
  // than the wait below), so the slot serves the next request.
  stream.close();
  EXPECT_EQ(status_once_the_slot_frees(), 200) << busy_->log();
}

TEST_F(BusyServerTest, AWholeRequestWhoseClientLeavesFreesItsSlot) {
  json body = kLong;
  body["stream"] = false;
  {
    RawStream request(busy_->port(), body.dump(), kKey);
    std::this_thread::sleep_for(300ms);  // the generation has started
  }
  EXPECT_EQ(status_once_the_slot_frees(), 200) << busy_->log();
}

// SIGTERM: no new connections, but a stream in flight is answered to its end and
// the server then exits with 0.
TEST(ServerShutdown, SigtermAnswersTheRequestsInFlight) {
  TILLER_REQUIRE_MODEL(path, kModel);
  testing::ServerProcess server(TILLER_BINARY, {"-m", path, "-c", "512", "-t", "2"});
  ASSERT_TRUE(server.wait_ready()) << server.log();
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 120}, {"ignore_eos", true}, {"stream", true},
                     {"temperature", 0}};
  RawStream stream(server.port(), body.dump(), "");
  ASSERT_TRUE(stream.read_until("data: ")) << server.log();
  server.terminate();
  EXPECT_TRUE(stream.read_until("data: [DONE]")) << stream.received() << server.log();
  EXPECT_NE(stream.received().find("\"finish_reason\":\"length\""), std::string::npos);
  stream.close();  // else the server waits out the connection's keep-alive
  EXPECT_EQ(server.stop(), 0) << server.log();
  EXPECT_NE(server.log().find("stopping"), std::string::npos) << server.log();
}

}  // namespace
}  // namespace tiller
