// The server's request parsing (src/server/request.h) without HTTP or a model:
// what a body becomes, and which bodies are refused with which field named.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/request.h"
#include "server/response.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;

CompletionRequest chat(const json& body) { return parse_completion_request(body.dump(), Endpoint::ChatCompletions); }
CompletionRequest text(const json& body) { return parse_completion_request(body.dump(), Endpoint::Completions); }

// The ApiError a body gets; fails the test when it is accepted.
ApiError refusal(std::string_view body, Endpoint endpoint = Endpoint::ChatCompletions) {
  try {
    parse_completion_request(body, endpoint);
  } catch (const ApiError& error) {
    return error;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "", "");
}

const json kHello = {{"role", "user"}, {"content", "Hello"}};

TEST(ServerRequest, ChatFieldsBecomeLibraryValues) {
  const CompletionRequest request =
      chat({{"model", "anything"}, {"messages", {{{"role", "system"}, {"content", "Be brief."}}, kHello}},
            {"temperature", 0}, {"top_p", 0.5}, {"top_k", 7}, {"min_p", 0.1}, {"seed", 42}, {"max_tokens", 12},
            {"stop", {"\n", "END"}}, {"presence_penalty", 0.5}, {"frequency_penalty", -0.25}, {"stream", true},
            {"stream_options", {{"include_usage", true}}}});
  EXPECT_EQ(request.model, "anything");
  ASSERT_EQ(request.messages.size(), 2u);
  EXPECT_EQ(request.messages[0].role, "system");
  EXPECT_EQ(request.messages[1].content, "Hello");
  const SamplerParams& s = request.generation.sampling;
  EXPECT_EQ(s.temperature, 0.0f);
  EXPECT_EQ(s.top_p, 0.5f);
  EXPECT_EQ(s.top_k, 7);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_EQ(s.presence_penalty, 0.5f);
  EXPECT_EQ(s.frequency_penalty, -0.25f);
  EXPECT_EQ(request.seed, 42u);
  EXPECT_EQ(request.generation.n_predict, 12);
  EXPECT_EQ(request.generation.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(request.stream);
  EXPECT_TRUE(request.include_usage);
  EXPECT_FALSE(request.steering);
}

TEST(ServerRequest, DefaultsWhereTheBodyIsSilentAndNullIsAbsent) {
  SamplerParams defaults;
  defaults.temperature = 0.3f;
  const CompletionRequest request = parse_completion_request(
      json{{"prompt", "Once"}, {"temperature", nullptr}, {"stop", nullptr}, {"seed", nullptr}}.dump(),
      Endpoint::Completions, defaults);
  EXPECT_EQ(request.prompt, "Once");
  EXPECT_EQ(request.generation.sampling.temperature, 0.3f);
  EXPECT_EQ(request.generation.n_predict, -1);  // until the end or a full context, as OpenAI's
  EXPECT_FALSE(request.seed);
  EXPECT_FALSE(request.stream);
  EXPECT_TRUE(request.generation.stop.empty());
}

TEST(ServerRequest, OtherFormsClientsSend) {
  EXPECT_EQ(text({{"prompt", {"only one"}}}).prompt, "only one");
  EXPECT_EQ(text({{"prompt", "x"}, {"stop", "STOP"}}).generation.stop, std::vector<std::string>{"STOP"});
  EXPECT_TRUE(text({{"prompt", "x"}, {"stop", ""}}).generation.stop.empty());
  EXPECT_TRUE(text({{"prompt", "x"}, {"stop", {"", ""}}}).generation.stop.empty());
  EXPECT_EQ(chat({{"messages", {kHello}}, {"max_completion_tokens", 5}}).generation.n_predict, 5);
  const json parts = {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}};
  EXPECT_EQ(chat({{"messages", {parts}}}).messages[0].content, "ab");
  // Unknown top-level fields are ignored: clients send extras (user, tools, ...).
  EXPECT_NO_THROW(chat({{"messages", {kHello}}, {"user", "u1"}, {"some_future_field", {1, 2}}}));
  EXPECT_NO_THROW(chat({{"messages", {kHello}}, {"n", 1}, {"logprobs", false}}));
  EXPECT_EQ(chat({{"messages", {kHello}}, {"seed", -1}}).seed, ~uint64_t{0});
}

TEST(ServerRequest, LogprobsInTheirTwoForms) {
  EXPECT_EQ(chat({{"messages", {kHello}}}).top_logprobs, -1);
  EXPECT_EQ(chat({{"messages", {kHello}}, {"logprobs", false}, {"top_logprobs", 0}}).top_logprobs, -1);
  EXPECT_EQ(chat({{"messages", {kHello}}, {"logprobs", true}}).top_logprobs, 0);
  EXPECT_EQ(chat({{"messages", {kHello}}, {"logprobs", true}, {"top_logprobs", 20}}).top_logprobs, 20);
  EXPECT_EQ(text({{"prompt", "x"}}).top_logprobs, -1);
  EXPECT_EQ(text({{"prompt", "x"}, {"logprobs", 0}}).top_logprobs, 0);
  EXPECT_EQ(text({{"prompt", "x"}, {"logprobs", 5}}).top_logprobs, 5);
  EXPECT_EQ(text({{"prompt", "x"}, {"logprobs", nullptr}}).top_logprobs, -1);
}

TEST(ServerRequest, EverySamplingFieldReachesTheSampler) {
  const CompletionRequest request =
      chat({{"messages", {kHello}}, {"temperature", 0.5}, {"top_p", 0.5}, {"top_k", 7}, {"min_p", 0.25},
            {"seed", 99}, {"max_tokens", 12}, {"stop", {"a", "b"}}, {"presence_penalty", 0.5},
            {"frequency_penalty", -0.5}, {"repeat_penalty", 1.25}});
  const SamplerParams& s = request.generation.sampling;
  EXPECT_EQ(s.temperature, 0.5f);
  EXPECT_EQ(s.top_p, 0.5f);
  EXPECT_EQ(s.top_k, 7);
  EXPECT_EQ(s.min_p, 0.25f);
  EXPECT_EQ(request.seed, 99u);  // the handler puts it into the job's SamplerParams
  EXPECT_EQ(request.generation.n_predict, 12);
  EXPECT_EQ(request.generation.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.presence_penalty, 0.5f);
  EXPECT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_EQ(s.repeat_penalty, 1.25f);
}

TEST(ServerRequest, SteeringIsTheLibrarysSpec) {
  const CompletionRequest request =
      chat({{"messages", {kHello}},
            {"steering", {{"control_vectors", {{{"name", "happy"}, {"scale", 0.5}}}}, {"layer_range", {3, 20}},
                          {"ablate", {{{"name", "refusal.v2"}}}}}},
            {"compare", true}});
  ASSERT_TRUE(request.steering);
  ASSERT_EQ(request.steering->control_vectors.size(), 1u);
  EXPECT_EQ(request.steering->control_vectors[0].vector.name, "happy");
  EXPECT_EQ(request.steering->control_vectors[0].value, 0.5f);
  EXPECT_TRUE(request.compare);
  EXPECT_EQ(steering_vector_names(*request.steering), (std::vector<std::string>{"happy", "refusal.v2"}));
}

TEST(ServerRequest, BadBodiesNameTheirField) {
  struct Case {
    std::string body;
    std::string param;  // the field named, or empty
  };
  const std::string m = R"("messages": [{"role": "user", "content": "hi"}])";
  for (const Case& c : std::vector<Case>{
           {"{", ""},
           {"55e21725", ""},  // a number too large for a double (the fuzzer's find)
           {"{" + m + R"(, "temperature": 1e999})", ""},
           {"[1, 2]", ""},
           {"", ""},
           {"{}", "messages"},
           {R"({"messages": []})", "messages"},
           {R"({"messages": "hi"})", "messages"},
           {R"({"messages": [{"content": "hi"}]})", "messages[0]"},
           {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
           {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content"},
           {R"({"messages": [{"role": "user", "content": [{"type": {}, "text": ""}]}]})", "messages[0].content"},
           {"{" + m + R"(, "temperature": "hot"})", "temperature"},
           {"{" + m + R"(, "temperature": -1})", "temperature"},
           {"{" + m + R"(, "top_p": 0})", "top_p"},
           {"{" + m + R"(, "top_p": 1.5})", "top_p"},
           {"{" + m + R"(, "top_p": 5e-324})", "top_p"},  // 0 as the sampler's float (schemathesis' find)
           {"{" + m + R"(, "repeat_penalty": 1e-50})", "repeat_penalty"},
           {"{" + m + R"(, "top_k": 2.5})", "top_k"},
           {"{" + m + R"(, "min_p": 2})", "min_p"},
           {"{" + m + R"(, "max_tokens": -3})", "max_tokens"},
           {"{" + m + R"(, "max_tokens": "10"})", "max_tokens"},
           {"{" + m + R"(, "seed": 1.5})", "seed"},
           {"{" + m + R"(, "seed": 18446744073709551615})", "seed"},
           {"{" + m + R"(, "presence_penalty": 3})", "presence_penalty"},
           {"{" + m + R"(, "frequency_penalty": true})", "frequency_penalty"},
           {"{" + m + R"(, "stop": 5})", "stop"},
           {"{" + m + R"(, "stop": ["a", 1]})", "stop"},
           {"{" + m + R"(, "stream": "yes"})", "stream"},
           {"{" + m + R"(, "stream_options": {"include_usage": 1}})", "include_usage"},
           {"{" + m + R"(, "n": 2})", "n"},
           {"{" + m + R"(, "logprobs": 1})", "logprobs"},
           {"{" + m + R"(, "logprobs": true, "top_logprobs": 21})", "top_logprobs"},
           {"{" + m + R"(, "logprobs": true, "top_logprobs": -1})", "top_logprobs"},
           {"{" + m + R"(, "top_logprobs": 3})", "top_logprobs"},
           {"{" + m + R"(, "compare": true})", "compare"},
           {"{" + m + R"(, "steering": []})", "steering"},
           {"{" + m + R"(, "steering": {"control_vector": [{"name": "a"}]}})", "steering"},  // a typo
           {"{" + m + R"(, "steering": {"control_vectors": [{"name": "a", "scael": 1}]}})", "steering"},
           {"{" + m + R"(, "steering": {"control_vectors": [{"name": 3}]}})", "steering"},
           {"{" + m + R"(, "steering": {"control_vectors": [{"path": "/etc/x.gguf"}]}})", "steering"},
           {"{" + m + R"(, "steering": {"control_vectors": [{"name": "../secret"}]}})", "steering"},
           {"{" + m + R"(, "steering": {"control_vectors": [{"name": "a/b"}]}})", "steering"},
           {"{" + m + R"(, "steering": {"ablate": [{"name": "a..b"}]}})", "steering"},
           {"{" + m + R"(, "steering": {"clamp": [{"name": ".hidden", "value": 1}]}})", "steering"},
           {"{" + m + R"(, "steering": {"actadd": [{"name": "x/y"}]}})", "steering"},
       }) {
    const ApiError error = refusal(c.body);
    EXPECT_EQ(error.status, 400) << c.body;
    EXPECT_EQ(error.type, "invalid_request_error") << c.body;
    EXPECT_EQ(error.param, c.param) << c.body << ": " << error.what();
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << c.body;
  }
  EXPECT_EQ(refusal(R"({"prompt": "a", "logprobs": 6})", Endpoint::Completions).param, "logprobs");
  EXPECT_EQ(refusal(R"({"prompt": "a", "logprobs": true})", Endpoint::Completions).param, "logprobs");
  EXPECT_EQ(refusal(R"({"prompt": 3})", Endpoint::Completions).param, "prompt");
  EXPECT_EQ(refusal(R"({"prompt": ["a", "b"]})", Endpoint::Completions).param, "prompt");
  EXPECT_EQ(refusal(R"({"messages": []})", Endpoint::Completions).param, "prompt");
}

TEST(ServerRequest, VectorNamesStayInTheirFolder) {
  for (const char* good : {"happy", "Happy_2", "a-b.c", "x.v2"}) EXPECT_TRUE(is_vector_name(good)) << good;
  for (const char* bad : {"", ".", "..", "../a", "a/b", "/abs", ".hidden", "a..b", "a b", "a\\b", "a\nb"}) {
    EXPECT_FALSE(is_vector_name(bad)) << bad;
  }
  EXPECT_FALSE(is_vector_name(std::string(201, 'a')));
}

TEST(ServerResponse, ObjectsHaveOpenAIsShape) {
  GenerationResult result;
  result.text = "Hi!";
  result.reason = StopReason::EndOfGeneration;
  const ResponseHeader header{"chatcmpl-1", 7, "m", Endpoint::ChatCompletions, false, 3};
  const json whole = completion_response(header, {result}, {5, 2});
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["content"], "Hi!");
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(whole["usage"]["total_tokens"], 7);
  EXPECT_FALSE(whole["choices"][0].contains("steered"));

  const json first = completion_chunk(header, 0, "Hi", true, std::nullopt, true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "Hi");
  EXPECT_TRUE(first["usage"].is_null());
  const json last = completion_chunk(header, 0, "", false, StopReason::Length, false);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_FALSE(last.contains("usage"));
  EXPECT_EQ(usage_chunk(header, {5, 2})["choices"].size(), 0u);

  const ResponseHeader text{"cmpl-1", 7, "m", Endpoint::Completions, true, 3};
  const json compared = completion_response(text, {result, result}, {5, 4});
  EXPECT_EQ(compared["object"], "text_completion");
  EXPECT_EQ(compared["choices"][1]["text"], "Hi!");
  EXPECT_EQ(compared["choices"][0]["steered"], true);
  EXPECT_EQ(compared["choices"][1]["steered"], false);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  // Invalid UTF-8 from a model is replaced, never thrown.
  EXPECT_NO_THROW(dump(json{{"text", std::string("\xff\xfe")}}));

  const json error = error_body(bad_request("no", "temperature"));
  EXPECT_EQ(error["error"]["message"], "no");
  EXPECT_EQ(error["error"]["param"], "temperature");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
}

}  // namespace
}  // namespace tiller::server
