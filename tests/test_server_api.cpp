// The API around the completions: GET /metrics, POST /tokenize and /detokenize,
// logprobs, and the OpenAPI document held to the routes the server has.
// ServerMetrics.* and ServerOpenApi.* need no model, ServerLogprobs.* its
// tokenizer; ServerApiTest.* run `tiller serve` on smollm2-135m-instruct.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "server/logprobs.h"
#include "server/metrics.h"
#include "server/openapi.h"
#include "server/response.h"
#include "server/scheduler.h"
#include "support/server_process.h"
#include "support/test_files.h"
#include "tiller/cpu_features.h"
#include "tiller/engine.h"
#include "tiller/model.h"

namespace tiller {
namespace {

using json = nlohmann::json;
using server::Metrics;

constexpr const char* kApiModel = "smollm2-135m-instruct";
constexpr const char* kApiKey = "api-test-key";

// The value of one sample line ("name{labels} value") of an exposition, or NaN.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return NAN;
}

// ---- no model ----

TEST(ServerMetrics, ExpositionHasHelpTypeAndCounts) {
  Metrics metrics;
  metrics.record_request("/v1/completions", 200, 0.3);
  metrics.record_request("/v1/completions", 200, 7.0);
  metrics.record_request("/v1/completions", 400, 0.001);
  metrics.record_request("other", 404, -1);  // refused before routing: counted, not timed
  metrics.record_generation(10, 5, 0.5);
  metrics.record_generation(3, 0, 0.0);
  const std::string text = metrics.render({2, 1, 3, 16}, 4);
  // Every metric has its HELP and TYPE lines, and every sample line its metric's.
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (line[0] != '#') {
      std::string name = line.substr(0, line.find_first_of("{ "));
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (name.size() > s.size() && name.ends_with(s) && typed.count(name.substr(0, name.size() - s.size()))) {
          name = name.substr(0, name.size() - s.size());
        }
      }
      EXPECT_TRUE(typed.count(name)) << "no # TYPE before " << line;
    }
  }
  EXPECT_NE(text.find("# HELP tiller_generation_tokens_per_second "), std::string::npos);
  EXPECT_NE(text.find("last 60 seconds"), std::string::npos);
  EXPECT_EQ(sample(text, "tiller_requests_total{path=\"/v1/completions\",code=\"200\"}"), 2);
  EXPECT_EQ(sample(text, "tiller_requests_total{path=\"/v1/completions\",code=\"400\"}"), 1);
  EXPECT_EQ(sample(text, "tiller_requests_total{path=\"other\",code=\"404\"}"), 1);
  EXPECT_EQ(sample(text, "tiller_request_duration_seconds_count{path=\"/v1/completions\"}"), 3);
  EXPECT_EQ(sample(text, "tiller_request_duration_seconds_bucket{path=\"/v1/completions\",le=\"0.5\"}"), 2);
  EXPECT_EQ(sample(text, "tiller_request_duration_seconds_bucket{path=\"/v1/completions\",le=\"5\"}"), 2);
  EXPECT_EQ(sample(text, "tiller_request_duration_seconds_bucket{path=\"/v1/completions\",le=\"10\"}"), 3);
  EXPECT_EQ(sample(text, "tiller_request_duration_seconds_bucket{path=\"/v1/completions\",le=\"+Inf\"}"), 3);
  EXPECT_NEAR(sample(text, "tiller_request_duration_seconds_sum{path=\"/v1/completions\"}"), 7.301, 1e-9);
  EXPECT_TRUE(std::isnan(sample(text, "tiller_request_duration_seconds_count{path=\"other\"}")));
  EXPECT_EQ(sample(text, "tiller_prompt_tokens_total"), 13);
  EXPECT_EQ(sample(text, "tiller_generated_tokens_total"), 5);
  EXPECT_EQ(sample(text, "tiller_generations_total"), 2);
  EXPECT_EQ(sample(text, "tiller_slots"), 2);
  EXPECT_EQ(sample(text, "tiller_slots_busy"), 1);
  EXPECT_EQ(sample(text, "tiller_queue_length"), 3);
  EXPECT_EQ(sample(text, "tiller_queue_capacity"), 16);
  EXPECT_EQ(sample(text, "tiller_requests_in_flight"), 4);
}

TEST(ServerMetrics, TokensPerSecondSpreadsEachGenerationOverItsTime) {
  Metrics metrics;
  const auto now = Metrics::Clock::now();
  using std::chrono::seconds;
  metrics.record_generation(1, 600, 10.0, now - seconds(5));    // all inside the window
  metrics.record_generation(1, 300, 30.0, now - seconds(50));   // [-80 s, -50 s]: a third inside
  metrics.record_generation(1, 1000, 1.0, now - seconds(100));  // over before the window
  EXPECT_NEAR(metrics.tokens_per_second(now), (600 + 100) / 60.0, 1e-6);
  // At +50 s the window is [-10 s, +50 s]: half of the first generation's time.
  EXPECT_NEAR(metrics.tokens_per_second(now + seconds(50)), 300 / 60.0, 1e-6);
  EXPECT_EQ(Metrics().tokens_per_second(), 0.0);
}

TEST(ServerLogprobs, LogSoftmaxOfARowAndItsBest) {
  TILLER_REQUIRE_MODEL(path, kApiModel);
  const auto model = Model::load(path);
  const Tokenizer& tokenizer = model->tokenizer();
  std::vector<float> logits(size_t(tokenizer.n_vocab()), -5.0f);
  logits[100] = 3.0f;
  logits[7] = 2.0f;
  logits[9] = 2.0f;  // a tie with 7: the lower id first
  logits[11] = -INFINITY;
  double sum = 0;
  for (const float x : logits) sum += std::isinf(x) ? 0.0 : std::exp(double(x) - 3.0);
  const double log_z = 3.0 + std::log(sum);

  const server::TokenLogprob entry = server::token_logprob(logits, 9, 3, tokenizer);
  EXPECT_EQ(entry.id, 9);
  EXPECT_EQ(entry.piece, tokenizer.token_to_piece(9, true));
  EXPECT_NEAR(entry.logprob, 2.0 - log_z, 1e-6);
  ASSERT_EQ(entry.top.size(), 3u);
  EXPECT_EQ(entry.top[0].id, 100);
  EXPECT_EQ(entry.top[1].id, 7);
  EXPECT_EQ(entry.top[2].id, 9);
  EXPECT_NEAR(entry.top[0].logprob, 3.0 - log_z, 1e-6);
  EXPECT_TRUE(server::token_logprob(logits, 100, 0, tokenizer).top.empty());
  EXPECT_TRUE(std::isinf(server::token_logprob(logits, 11, 0, tokenizer).logprob));
  // Special tokens are shown as their text (a chat's end-of-turn among the alternatives).
  const TokenId eos = tokenizer.eos();
  EXPECT_EQ(server::token_logprob(logits, eos, 0, tokenizer).piece, tokenizer.token_text(eos));
}

TEST(ServerLogprobs, ObjectsInOpenAIsTwoForms) {
  server::TokenLogprob a{1, "h\xC3", -0.5f, {{1, "h\xC3", -0.5f}, {2, "x", -1.5f}}};
  server::TokenLogprob b{3, "\xA9!", -0.25f, {}};
  size_t offset = 0;
  const json chat = server::logprobs_object(server::Endpoint::ChatCompletions, {a, b}, offset);
  ASSERT_EQ(chat["content"].size(), 2u);
  EXPECT_EQ(chat["content"][0]["bytes"], json({104, 0xC3}));
  EXPECT_EQ(chat["content"][0]["logprob"], -0.5f);
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1], json({{"token", "x"}, {"logprob", -1.5f}, {"bytes", {120}}}));
  EXPECT_TRUE(chat["content"][1]["top_logprobs"].empty());
  EXPECT_TRUE(chat["refusal"].is_null());

  offset = 10;  // where the previous chunk's tokens ended
  const json text = server::logprobs_object(server::Endpoint::Completions, {a, b}, offset);
  EXPECT_EQ(text["token_logprobs"], json({-0.5f, -0.25f}));
  EXPECT_EQ(text["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(text["top_logprobs"][1], json({{"\xA9!", -0.25f}}));  // the chosen token is always there
  // Characters: "h" + the lead byte of "é" is 2, the continuation byte and "!" 1.
  EXPECT_EQ(text["text_offset"], json({10, 12}));
  EXPECT_EQ(offset, 13u);
  EXPECT_NO_THROW((void)server::dump(text));  // the split character does not break the JSON text
}

TEST(ServerOpenApi, TheDocumentParsesAndRoutesMapToItsTemplates) {
  const json document = json::parse(server::openapi_document());
  EXPECT_EQ(document["openapi"], "3.1.0");
  const auto& paths = server::documented_paths();
  EXPECT_EQ(paths.size(), document["paths"].size());
  EXPECT_EQ(server::route_template("/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(server::route_template("/v1/vectors"), "/v1/vectors");
  EXPECT_EQ(server::route_template("/v1/vectors/happy.v2"), "/v1/vectors/{name}");
  EXPECT_EQ(server::route_template("/"), "/");
  EXPECT_EQ(server::route_template("/v1/vectors/"), "other");
  EXPECT_EQ(server::route_template("/nothing/here"), "other");
  // Every $ref points at a schema the document has.
  std::function<void(const json&)> check_refs = [&](const json& node) {
    if (node.is_object()) {
      for (const auto& [key, value] : node.items()) {
        if (key == "$ref") {
          const std::string ref = value.get<std::string>();
          ASSERT_EQ(ref.rfind("#/components/schemas/", 0), 0u) << ref;
          EXPECT_TRUE(document["components"]["schemas"].contains(ref.substr(21))) << ref;
        } else {
          check_refs(value);
        }
      }
    } else if (node.is_array()) {
      for (const json& item : node) check_refs(item);
    }
  };
  check_refs(document);
}

// The routes src/server registers on httplib (http.Get("/path", ...) and the like),
// a regex group standing for a path parameter, as "METHOD /path/{}".
std::set<std::string> registered_routes() {
  std::set<std::string> routes;
  const std::regex call(R"re(\.(Get|Post|Put|Delete|Patch)\(\s*(?:R"\()?"?([^"\(\)]*(?:\([^\)]*\)[^"\(\)]*)*)"?)re");
  const std::regex group(R"(\([^\)]*\))");
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(TILLER_SOURCE_DIR) / "src/server")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto it = std::sregex_iterator(source.begin(), source.end(), call); it != std::sregex_iterator(); ++it) {
      std::string method = (*it)[1];
      std::transform(method.begin(), method.end(), method.begin(), ::toupper);
      routes.insert(method + " " + std::regex_replace((*it)[2].str(), group, "{}"));
    }
  }
  return routes;
}

std::set<std::string> documented_routes() {
  std::set<std::string> routes;
  const json document = json::parse(server::openapi_document());
  const std::regex parameter(R"(\{[^}]*\})");
  for (const auto& [path, item] : document["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method == "parameters") continue;
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      routes.insert(upper + " " + std::regex_replace(path, parameter, "{}"));
    }
  }
  return routes;
}

TEST(ServerOpenApi, EveryRegisteredRouteIsDocumented) {
  const std::set<std::string> registered = registered_routes(), documented = documented_routes();
  // The scan must see the routes it is known to find, or it proves nothing.
  for (const char* known : {"GET /health", "POST /v1/chat/completions", "GET /metrics", "POST /tokenize"}) {
    EXPECT_TRUE(registered.count(known)) << "the source scan no longer finds " << known;
  }
  for (const std::string& route : registered) {
    EXPECT_TRUE(documented.count(route)) << route << " is registered in src/server but not in src/server/openapi.json";
  }
}

// ---- a live server ----

class ServerApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_path_ = testing::real_model_path(kApiModel);
    if (model_path_.empty()) return;
    server_ = testing::start_suite_server(model_path_, {"--parallel", "2", "-c", "256", "-t", "2", "--api-key", kApiKey});
  }
  static void TearDownTestSuite() {
    testing::stop_suite_server(server_);
  }
  void SetUp() override {
    TILLER_REQUIRE_MODEL(path, kApiModel);
    ASSERT_TRUE(server_);
  }

  static httplib::Client client(bool with_key = true) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(300, 0);
    if (with_key) c.set_bearer_token_auth(kApiKey);
    return c;
  }
  static json post_json(const std::string& path, const json& body, int status = 200) {
    auto res = client().Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, status) << path << " " << body.dump() << "\n" << res->body;
    return json::parse(res->body, nullptr, false);
  }
  static std::string metrics() {
    auto res = client().Get("/metrics");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return res->body;
  }

  static inline std::string model_path_;
  static inline std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ServerApiTest, MetricsCountRequestsAndTokens) {
  const std::string before = metrics();
  const json reply = post_json("/v1/completions", {{"prompt", "The sky is"}, {"max_tokens", 7}, {"temperature", 0}});
  post_json("/v1/completions", {{"prompt", 5}}, 400);
  client().Get("/no/such/path");
  const std::string after = metrics();
  const auto delta = [&](const std::string& series) {
    const double a = sample(after, series), b = sample(before, series);
    return a - (std::isnan(b) ? 0.0 : b);
  };
  EXPECT_EQ(delta("tiller_requests_total{path=\"/v1/completions\",code=\"200\"}"), 1);
  EXPECT_EQ(delta("tiller_requests_total{path=\"/v1/completions\",code=\"400\"}"), 1);
  EXPECT_EQ(delta("tiller_requests_total{path=\"other\",code=\"404\"}"), 1);
  EXPECT_EQ(delta("tiller_requests_total{path=\"/metrics\",code=\"200\"}"), 1);  // the first scrape
  EXPECT_EQ(delta("tiller_request_duration_seconds_count{path=\"/v1/completions\"}"), 2);
  EXPECT_EQ(delta("tiller_prompt_tokens_total"), reply["usage"]["prompt_tokens"].get<double>());
  EXPECT_EQ(delta("tiller_generated_tokens_total"), reply["usage"]["completion_tokens"].get<double>());
  EXPECT_GT(sample(after, "tiller_generation_tokens_per_second"), 0.0);
  EXPECT_EQ(sample(after, "tiller_slots"), 2);
  EXPECT_EQ(sample(after, "tiller_slots_busy"), 0);
  EXPECT_EQ(sample(after, "tiller_queue_length"), 0);
}

TEST_F(ServerApiTest, StreamedTokensAreCountedToo) {
  const std::string before = metrics();
  auto res = client().Post("/v1/chat/completions",
                           json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 5},
                                {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}
                               .dump(),
                           "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  int completion = -1;
  std::istringstream in(res->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: {", 0) != 0) continue;
    const json chunk = json::parse(line.substr(6));
    if (chunk["usage"].is_object()) completion = chunk["usage"]["completion_tokens"];
  }
  ASSERT_GT(completion, 0) << res->body;
  EXPECT_EQ(sample(metrics(), "tiller_generated_tokens_total") - sample(before, "tiller_generated_tokens_total"),
            completion);
}

TEST_F(ServerApiTest, KeyGuardsMetricsAndTokenizeButNotTheDocument) {
  for (const char* path : {"/metrics"}) {
    auto res = client(false).Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << path;
  }
  for (const char* path : {"/tokenize", "/detokenize"}) {
    auto res = client(false).Post(path, R"({"content": "a", "tokens": []})", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << path;
  }
  for (const char* path : {"/openapi.json", "/health"}) {
    auto res = client(false).Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << path;
  }
}

TEST_F(ServerApiTest, TokenizeAndDetokenizeRoundTrip) {
  const auto model = Model::load(model_path_);
  const Tokenizer& tokenizer = model->tokenizer();
  const std::string text = "Hello, wörld! <|im_start|>";
  const json plain = post_json("/tokenize", {{"content", text}});
  const auto expected = tokenizer.tokenize(text, {.add_special = false, .parse_special = true});
  EXPECT_EQ(plain["tokens"].get<std::vector<TokenId>>(), expected);
  EXPECT_EQ(post_json("/tokenize", {{"content", text}, {"parse_special", false}})["tokens"].get<std::vector<TokenId>>(),
            tokenizer.tokenize(text, {.add_special = false, .parse_special = false}));
  EXPECT_EQ(post_json("/tokenize", {{"content", text}, {"add_special", true}})["tokens"].get<std::vector<TokenId>>(),
            tokenizer.tokenize(text, {.add_special = true, .parse_special = true}));
  EXPECT_EQ(post_json("/detokenize", {{"tokens", plain["tokens"]}})["content"], text);
  EXPECT_EQ(post_json("/detokenize", {{"tokens", json::array()}})["content"], "");

  const json pieces = post_json("/tokenize", {{"content", text}, {"with_pieces", true}});
  ASSERT_EQ(pieces["tokens"].size(), expected.size());
  std::string joined;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(pieces["tokens"][i]["id"], expected[i]);
    const json& piece = pieces["tokens"][i]["piece"];
    if (piece.is_string()) {
      joined += piece.get<std::string>();
    } else {  // bytes of part of a character
      for (const json& byte : piece) joined += static_cast<char>(byte.get<int>());
    }
  }
  EXPECT_EQ(joined, text);

  // A character split over byte tokens: its pieces come as bytes.
  const json emoji = post_json("/tokenize", {{"content", "🦀"}, {"with_pieces", true}});
  bool any_bytes = false;
  for (const json& token : emoji["tokens"]) any_bytes |= token["piece"].is_array();
  EXPECT_EQ(any_bytes, emoji["tokens"].size() > 1) << emoji;
}

TEST_F(ServerApiTest, TokenizeRefusesBadBodies) {
  const int n_vocab = Model::load(model_path_)->tokenizer().n_vocab();
  for (const auto& [path, body, param] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/tokenize", "{", ""},
           {"/tokenize", "[]", ""},
           {"/tokenize", "{}", "content"},
           {"/tokenize", R"({"content": 3})", "content"},
           {"/tokenize", R"({"content": "a", "with_pieces": "yes"})", "with_pieces"},
           {"/tokenize", R"({"content": "a", "add_special": 1})", "add_special"},
           {"/detokenize", "{}", "tokens"},
           {"/detokenize", R"({"tokens": "1 2"})", "tokens"},
           {"/detokenize", R"({"tokens": [1, "2"]})", "tokens"},
           {"/detokenize", R"({"tokens": [1.5]})", "tokens"},
           {"/detokenize", R"({"tokens": [-1]})", "tokens"},
           {"/detokenize", "{\"tokens\": [" + std::to_string(n_vocab) + "]}", "tokens"},
           {"/detokenize", R"({"tokens": [18446744073709551615]})", "tokens"},
       }) {
    auto res = client().Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << path << " " << body << "\n" << res->body;
    const json error = json::parse(res->body);
    EXPECT_EQ(error["error"]["type"], "invalid_request_error") << res->body;
    EXPECT_EQ(error["error"]["param"], param.empty() ? json(nullptr) : json(param)) << path << " " << body;
  }
}

// Greedy tokens and their logprobs against the model run here token by token, as
// the server's generator runs it: each logprob must be the log-softmax of that
// step's raw logits row.
TEST_F(ServerApiTest, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  const std::string prompt = "The capital of France is";
  const int n = 6, top = 3;
  const json reply = post_json("/v1/completions", {{"prompt", prompt}, {"max_tokens", n}, {"temperature", 0},
                                                   {"logprobs", top}, {"ignore_eos", true}});
  const json& logprobs = reply["choices"][0]["logprobs"];
  ASSERT_EQ(logprobs["tokens"].size(), size_t(n)) << reply;

  const auto model = Model::load(model_path_);
  const Tokenizer& tokenizer = model->tokenizer();
  // The server's engine: two threads, and the kernel level TILLER_KERNELS names.
  std::optional<KernelLevel> kernels;
  if (const char* level = std::getenv("TILLER_KERNELS"); level != nullptr && *level != '\0') {
    kernels = parse_kernel_level(level);
  }
  Session session(model, Engine::create({.n_threads = 2, .kernels = kernels}), {.n_ctx = 256});
  std::vector<TokenId> tokens = tokenizer.tokenize(prompt, {.add_special = true, .parse_special = false});
  ASSERT_EQ(int(tokens.size()), reply["usage"]["prompt_tokens"].get<int>());
  std::span<const float> row = session.decode(tokens, false);
  size_t offset = 0;
  std::string text;
  for (int i = 0; i < n; ++i) {
    double max = -INFINITY, sum = 0;
    for (const float x : row) max = std::max(max, double(x));
    for (const float x : row) sum += std::exp(double(x) - max);
    const auto best = TokenId(std::max_element(row.begin(), row.end()) - row.begin());
    const std::string piece = tokenizer.token_to_piece(best, true);
    EXPECT_EQ(logprobs["tokens"][i], piece) << i;
    EXPECT_NEAR(logprobs["token_logprobs"][i].get<double>(), double(row[size_t(best)]) - max - std::log(sum), 1e-4) << i;
    const json& alternatives = logprobs["top_logprobs"][i];
    EXPECT_GE(alternatives.size(), size_t(top));  // the top 3 and the chosen one (among them when greedy)
    EXPECT_NEAR(alternatives[piece].get<double>(), logprobs["token_logprobs"][i].get<double>(), 1e-6);
    for (const auto& [alt, value] : alternatives.items()) EXPECT_LE(value.get<double>(), 1e-6) << alt;
    EXPECT_EQ(logprobs["text_offset"][i], offset);
    offset += piece.size();  // ASCII here: characters are bytes
    text += piece;
    row = session.decode(std::span(&best, 1), false);
  }
  EXPECT_EQ(reply["choices"][0]["text"], text);
}

// Chat's form, whole and streamed: the streamed chunks' entries add up to the
// whole answer's, each chunk carrying those of the tokens it adds.
TEST_F(ServerApiTest, ChatLogprobsWholeAndStreamed) {
  const json body = {{"messages", {{{"role", "user"}, {"content", "Name a colour."}}}}, {"max_tokens", 8},
                     {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}};
  const json whole = post_json("/v1/chat/completions", body);
  const json& content = whole["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(int(content.size()), whole["usage"]["completion_tokens"].get<int>()) << whole;
  std::string joined;
  for (const json& entry : content) {
    ASSERT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_EQ(entry["top_logprobs"][0]["token"], entry["token"]);  // greedy: the chosen token is the best
    EXPECT_NEAR(entry["top_logprobs"][0]["logprob"].get<double>(), entry["logprob"].get<double>(), 1e-6);
    EXPECT_GE(entry["top_logprobs"][0]["logprob"].get<double>(), entry["top_logprobs"][1]["logprob"].get<double>());
    std::string bytes;
    for (const json& b : entry["bytes"]) bytes += static_cast<char>(b.get<int>());
    joined += bytes;
  }
  EXPECT_EQ(joined, whole["choices"][0]["message"]["content"]);

  json streamed_body = body;
  streamed_body["stream"] = true;
  auto res = client().Post("/v1/chat/completions", streamed_body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json streamed = json::array();
  std::istringstream in(res->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: {", 0) != 0) continue;
    const json chunk = json::parse(line.substr(6));
    const json& choice = chunk["choices"][0];
    ASSERT_TRUE(choice["logprobs"].is_object()) << chunk;
    if (choice["delta"].contains("content")) {
      EXPECT_FALSE(choice["logprobs"]["content"].empty()) << "a chunk with text and no logprobs: " << chunk;
    }
    for (const json& entry : choice["logprobs"]["content"]) streamed.push_back(entry);
  }
  EXPECT_EQ(streamed, content);

  // Without logprobs, none.
  EXPECT_TRUE(post_json("/v1/chat/completions", {{"messages", body["messages"]}, {"max_tokens", 2}})["choices"][0]
                  ["logprobs"]
                      .is_null());
}

// Each sampling field the request takes changes what the sampler does: the
// cut-offs at their tightest make a hot sampler greedy, the penalties move greedy
// text off a repetition, the seed repeats a draw, the length limits hold.
TEST_F(ServerApiTest, SamplingFieldsReachTheSampler) {
  const auto text = [](json body) {
    body["prompt"] = "Count: 1 1 1 1 1 1 1 1 1 1";
    if (!body.contains("max_tokens")) body["max_tokens"] = 8;
    return post_json("/v1/completions", body)["choices"][0]["text"].get<std::string>();
  };
  const std::string greedy = text({{"temperature", 0}});
  const std::string hot = text({{"temperature", 5}, {"top_k", 0}, {"top_p", 1}, {"min_p", 0}, {"seed", 3}});
  EXPECT_NE(hot, greedy);  // without the cut-offs, temperature 5 is far from greedy
  EXPECT_EQ(text({{"temperature", 5}, {"top_k", 1}, {"top_p", 1}, {"min_p", 0}, {"seed", 3}}), greedy);
  EXPECT_EQ(text({{"temperature", 5}, {"top_k", 0}, {"top_p", 1e-6}, {"min_p", 0}, {"seed", 3}}), greedy);
  EXPECT_EQ(text({{"temperature", 5}, {"top_k", 0}, {"top_p", 1}, {"min_p", 1}, {"seed", 3}}), greedy);
  EXPECT_EQ(text({{"temperature", 5}, {"top_k", 0}, {"top_p", 1}, {"min_p", 0}, {"seed", 3}}), hot);
  EXPECT_NE(text({{"temperature", 0}, {"frequency_penalty", 2}}), greedy);
  // Presence counts a token once, too little against ten "1"s: another prompt.
  const json paris = {{"prompt", "The capital of France is Paris. The capital of France is"}, {"temperature", 0},
                      {"max_tokens", 6}};
  json penalized = paris;
  penalized["presence_penalty"] = 2;
  EXPECT_NE(post_json("/v1/completions", penalized)["choices"][0]["text"],
            post_json("/v1/completions", paris)["choices"][0]["text"]);
  EXPECT_EQ(text({{"temperature", 0}, {"stop", greedy.substr(0, 2)}}), "");
  const json limited = post_json("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                                          {"max_completion_tokens", 3}, {"ignore_eos", true}});
  EXPECT_EQ(limited["usage"]["completion_tokens"], 3);
}

// Every path and method of the document is served: a probe answers anything but
// httplib's "no endpoint" 404. Routes another part of the server brings (the
// vector registry, the page) are reported while they are not there yet.
TEST_F(ServerApiTest, EveryDocumentedRouteIsServed) {
  const json document = json::parse(server::openapi_document());
  int probed = 0;
  for (const auto& [path, item] : document["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method == "parameters") continue;
      // An asset must exist to be told from a missing route (both are 404 otherwise).
      const std::string concrete =
          std::regex_replace(path, std::regex(R"(\{[^}]*\})"), path == "/assets/{name}" ? "app.js" : "probe");
      ASSERT_TRUE(method == "get" || method == "post" || method == "put" || method == "delete")
          << "a method this probe does not know: " << method << " " << path;
      httplib::Client c = client();
      httplib::Result res = method == "get"    ? c.Get(concrete.c_str())
                            : method == "post" ? c.Post(concrete.c_str(), "{}", "application/json")
                            : method == "put"  ? c.Put(concrete.c_str(), "x", "application/octet-stream")
                                               : c.Delete(concrete.c_str());
      ASSERT_TRUE(res) << method << " " << path;
      const bool missing = res->status == 404 && res->body.find("\"no endpoint ") != std::string::npos;
      EXPECT_FALSE(missing) << method << " " << path << " is in the document but the server has no such route";
      ++probed;
    }
  }
  EXPECT_GE(probed, 14);  // every documented operation
}

TEST_F(ServerApiTest, TheDocumentIsServed) {
  auto res = client(false).Get("/openapi.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->body, server::openapi_document());
  std::ifstream in(std::filesystem::path(TILLER_SOURCE_DIR) / "src/server/openapi.json");
  const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(res->body, source) << "the binary's document is not the source's: rebuild";
}

}  // namespace
}  // namespace tiller
