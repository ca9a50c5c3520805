#include "server/handlers.h"

#include <httplib.h>

#include <chrono>
#include <random>

#include "server/api_error.h"
#include "server/http_reply.h"
#include "server/connection_watch.h"
#include "server/generation_setup.h"
#include "server/page.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/response.h"
#include "server/scheduler.h"
#include "server/server_state.h"
#include "server/vector_routes.h"
#include "server/service_routes.h"
#include "tiller/error.h"

namespace tiller::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// How long a handler waits for a generation's next event before it looks at the
// client's connection again.
constexpr std::chrono::milliseconds kPoll{50};

// Compared in time independent of where the strings first differ.
bool same_key(const std::string& given, const std::string& expected) {
  unsigned char differ = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    differ |= static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
  }
  return differ == 0;
}

std::string response_id(Endpoint endpoint) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string id = endpoint == Endpoint::ChatCompletions ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += kDigits[random() % 36];
  return id;
}

uint64_t random_seed() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return random();
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Polls the connection at most every kPoll, whatever the events' pace.
class DisconnectCheck {
 public:
  explicit DisconnectCheck(const httplib::Request& req) : watch_(req.remote_addr, req.remote_port, req.local_port) {}
  bool client_gone() {
    const auto now = Clock::now();
    if (now - last_ < kPoll) return false;
    last_ = now;
    return watch_.closed();
  }

 private:
  ConnectionWatch watch_;
  Clock::time_point last_{};
};

// A completion request in flight, from before its admission until its response
// has been written (a stream's to its end: the token lives in httplib's content
// provider, which the response keeps until then).
class InFlight {
 public:
  explicit InFlight(ServerState& state) : state_(state) { state_.in_flight.fetch_add(1); }
  ~InFlight() { state_.in_flight.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  ServerState& state_;
};

// One admitted request: its jobs' channel and what the response needs.
struct Admitted {
  ResponseHeader header;
  std::shared_ptr<RequestChannel> channel;
  int n_jobs = 0;
  int n_prompt = 0;
  bool include_usage = false;
  int top_logprobs = -1;  // -1: no logprobs
  Metrics* metrics = nullptr;
};

Admitted admit(ServerState& state, const CompletionRequest& request) {
  const Prompt prompt = request_prompt(state, request);
  check_fits_context(state, prompt);
  const std::shared_ptr<const Steering> steering = request_steering(state, request);

  Admitted admitted;
  admitted.header = {response_id(request.endpoint), unix_now(), state.model_id, request.endpoint, request.compare,
                     request.seed.value_or(random_seed())};
  admitted.channel = std::make_shared<RequestChannel>();
  admitted.n_prompt = static_cast<int>(prompt.tokens.size());
  admitted.include_usage = request.include_usage;
  admitted.top_logprobs = request.top_logprobs;
  admitted.metrics = &state.metrics;

  GenerationJob job;
  job.prompt = prompt.tokens;
  job.layout = prompt.layout();
  job.options = request.generation;
  job.options.sampling.seed = admitted.header.seed;
  job.channel = admitted.channel;
  job.steering = steering;
  job.top_logprobs = request.top_logprobs;
  std::vector<GenerationJob> jobs;
  jobs.push_back(job);
  if (request.compare) {  // choice 1: the same request, unsteered, same seed
    job.index = 1;
    job.steering = nullptr;
    jobs.push_back(std::move(job));
  }
  admitted.n_jobs = static_cast<int>(jobs.size());
  try {
    state.scheduler->submit(std::move(jobs));
  } catch (const QueueFull& full) {
    ApiError error(503, "server_busy", full.what());
    error.retry_after = full.retry_after_seconds;
    throw error;
  }
  return admitted;
}

void respond_whole(const httplib::Request& req, httplib::Response& res, const Admitted& admitted) {
  DisconnectCheck check(req);
  std::vector<GenerationResult> results(size_t(admitted.n_jobs));
  std::vector<std::vector<TokenLogprob>> logprobs(size_t(admitted.n_jobs));
  Usage usage{admitted.n_prompt, 0};
  for (int done = 0; done < admitted.n_jobs;) {
    if (check.client_gone()) {
      admitted.channel->cancel();  // nobody to answer; the slot frees before its next token
      res.status = 499;            // nginx's "client closed request", for the log only
      return;
    }
    std::optional<GenerationEvent> event = admitted.channel->pop(kPoll);
    if (!event) continue;
    if (event->kind == GenerationEvent::Kind::Failed) {
      admitted.channel->cancel();
      throw ApiError(500, "server_error", "generation failed: " + event->text);
    }
    auto& entries = logprobs[size_t(event->index)];
    entries.insert(entries.end(), std::make_move_iterator(event->logprobs.begin()),
                   std::make_move_iterator(event->logprobs.end()));
    if (event->kind == GenerationEvent::Kind::Done) {
      const GenerationResult& result = event->result;
      usage.completion_tokens += static_cast<int>(result.tokens.size());
      admitted.metrics->record_generation(result.n_prompt, static_cast<int>(result.tokens.size()),
                                          result.generation_seconds);
      results[size_t(event->index)] = std::move(event->result);
      ++done;
    }
  }
  std::vector<json> logprobs_objects;
  if (admitted.top_logprobs >= 0) {
    for (const auto& entries : logprobs) {
      size_t offset = 0;
      logprobs_objects.push_back(logprobs_object(admitted.header.endpoint, entries, offset));
    }
  }
  send_json(res, 200, completion_response(admitted.header, results, usage, logprobs_objects));
}

// The stream's state, kept by httplib's content provider across its calls.
struct Stream {
  Admitted admitted;
  std::shared_ptr<InFlight> in_flight;
  DisconnectCheck check;
  std::vector<bool> started;
  Usage usage;
  int done = 0;
  std::vector<size_t> text_offsets;  // per choice: characters streamed so far (completions' logprobs)
};

void respond_streamed(const httplib::Request& req, httplib::Response& res, Admitted admitted,
                      std::shared_ptr<InFlight> in_flight) {
  auto stream = std::make_shared<Stream>(Stream{admitted, std::move(in_flight), DisconnectCheck(req),
                                                std::vector<bool>(size_t(admitted.n_jobs)), Usage{admitted.n_prompt, 0},
                                                0, std::vector<size_t>(size_t(admitted.n_jobs))});
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // proxies must not hold the events back
  const auto provider = [stream](size_t /*offset*/, httplib::DataSink& sink) {
    Stream& s = *stream;
    RequestChannel& channel = *s.admitted.channel;
    const auto write = [&](const std::string& text) {
      if (sink.write(text.data(), text.size())) return true;
      channel.cancel();  // the client is gone: free the slot
      return false;
    };
    if (s.check.client_gone()) {
      channel.cancel();
      return false;
    }
    std::optional<GenerationEvent> event = channel.pop(kPoll);
    if (!event) return true;  // httplib calls again
    const size_t index = size_t(event->index);
    // The entries of the tokens this event adds, in the chunk that carries it.
    const json logprobs = s.admitted.top_logprobs < 0
                              ? json(nullptr)
                              : logprobs_object(s.admitted.header.endpoint, event->logprobs, s.text_offsets[index]);
    switch (event->kind) {
      case GenerationEvent::Kind::Text: {
        const bool first = !s.started[index];
        s.started[index] = true;
        return write(sse_event(completion_chunk(s.admitted.header, event->index, event->text, first, std::nullopt,
                                                s.admitted.include_usage, logprobs)));
      }
      case GenerationEvent::Kind::Failed: {
        // The status is sent already; the error goes in the stream, as OpenAI does.
        channel.cancel();
        write(sse_event(error_body(ApiError(500, "server_error", "generation failed: " + event->text))));
        write(kSseDone);
        sink.done();
        return true;
      }
      case GenerationEvent::Kind::Done: {
        const GenerationResult& result = event->result;
        s.usage.completion_tokens += static_cast<int>(result.tokens.size());
        s.admitted.metrics->record_generation(result.n_prompt, static_cast<int>(result.tokens.size()),
                                              result.generation_seconds);
        const bool first = !s.started[index];
        s.started[index] = true;
        if (!write(sse_event(completion_chunk(s.admitted.header, event->index, "", first, result.reason,
                                              s.admitted.include_usage, logprobs)))) {
          return false;
        }
        if (++s.done < s.admitted.n_jobs) return true;
        if (s.admitted.include_usage && !write(sse_event(usage_chunk(s.admitted.header, s.usage)))) return false;
        if (!write(kSseDone)) return false;
        sink.done();
        return true;
      }
    }
    return false;
  };
  // Called when the response goes, finished or not: a stream that ended early
  // (the client left before the provider ran, a write failed) frees its jobs.
  const auto releaser = [channel = admitted.channel](bool /*success*/) { channel->cancel(); };
  res.set_chunked_content_provider("text/event-stream", provider, releaser);
}

void handle_completion(ServerState& state, const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  auto in_flight = std::make_shared<InFlight>(state);
  try {
    if (state.draining.load()) {
      ApiError error(503, "unavailable_error", "the server is shutting down");
      error.retry_after = 1;
      throw error;
    }
    if (!state.ready.load(std::memory_order_acquire)) {
      ApiError error(503, "unavailable_error", "the model is still loading");
      error.retry_after = 1;
      throw error;
    }
    const CompletionRequest request = parse_completion_request(req.body, endpoint, state.options.sampling);
    Admitted admitted = admit(state, request);
    if (request.stream) {
      respond_streamed(req, res, std::move(admitted), std::move(in_flight));
    } else {
      respond_whole(req, res, admitted);
    }
  } catch (const ApiError& error) {
    send_error(res, error);
  } catch (const Error& error) {
    // The library refused something of the request's that the checks above let
    // through (a chat template it cannot render, a token it cannot take).
    send_error(res, bad_request(error.what()));
  } catch (const std::exception& error) {
    send_error(res, ApiError(500, "server_error", std::string("internal error: ") + error.what()));
  }
}

}  // namespace

void register_handlers(httplib::Server& http, ServerState& state) {
  // The key guards the API, not the health check (load balancers probe it).
  http.set_pre_routing_handler([&state](const httplib::Request& req, httplib::Response& res) {
    mark_request_start();  // for the request metrics (server.cpp)
    if (state.options.api_key.empty() || !needs_api_key(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.rfind(prefix, 0) == 0 && same_key(header.substr(prefix.size()), state.options.api_key)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    send_error(res, ApiError(401, "authentication_error",
                             header.empty() ? "an API key is required: send 'Authorization: Bearer <key>'"
                                            : "the API key is not valid"));
    return httplib::Server::HandlerResponse::Handled;
  });

  // Statuses httplib sets itself (no route: 404; a body over the limit: 413) get
  // an OpenAI error object too; responses that have a body keep it.
  http.set_error_handler(httplib::Server::HandlerWithResponse([&state](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.body.empty() || res.status == 499) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413) {
      send_error(res, ApiError(413, "invalid_request_error",
                               "the request body is larger than the server takes (" +
                                   std::to_string(state.options.max_body) + " bytes; see --max-body)"));
    } else if (res.status == 404) {
      send_error(res, not_found("no endpoint " + req.method + " " + req.path));
    } else {
      send_error(res, ApiError(res.status, "invalid_request_error", "the request cannot be served"));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));

  http.Get("/health", [&state](const httplib::Request&, httplib::Response& res) {
    const bool ready = state.ready.load(std::memory_order_acquire);
    if (state.draining.load()) return send_json(res, 503, {{"status", "stopping"}});
    send_json(res, ready ? 200 : 503, {{"status", ready ? "ok" : "loading"}});
  });
  http.Get("/v1/models", [&state](const httplib::Request&, httplib::Response& res) {
    // The model's shape once it is loaded: the page sizes its block sliders by it.
    json meta = nullptr;
    if (state.ready.load(std::memory_order_acquire)) {
      meta = {{"n_layer", state.model->config().n_layer}, {"n_embd", state.model->config().n_embd},
              {"n_ctx", state.n_ctx}};
    }
    send_json(res, 200, model_list(state.model_id, state.created, meta));
  });
  http.Post("/v1/completions", [&state](const httplib::Request& req, httplib::Response& res) {
    handle_completion(state, req, res, Endpoint::Completions);
  });
  http.Post("/v1/chat/completions", [&state](const httplib::Request& req, httplib::Response& res) {
    handle_completion(state, req, res, Endpoint::ChatCompletions);
  });
  register_page(http);  // GET / and /assets/*: the web page, open like /health
  register_vector_routes(http, state);
  register_service_routes(http, state);  // /metrics, /tokenize, /detokenize, /openapi.json
}

}  // namespace tiller::server
