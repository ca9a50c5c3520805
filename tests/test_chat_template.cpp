// Chat rendering against Python's jinja2 (SmolLM2's own template) and against
// llama.cpp's built-in chatml and gemma formats.
#include <gtest/gtest.h>

#include "support/test_files.h"
#include "support/tokenizer_goldens.h"
#include "tiller/chat.h"
#include "common/fail.h"

namespace tiller {
namespace {

std::vector<ChatMessage> messages_of(const nlohmann::json& item) {
  std::vector<ChatMessage> messages;
  for (const auto& message : item["messages"]) messages.push_back({message["role"], message["content"]});
  return messages;
}

TEST(ChatTemplate, SmolLM2TemplateRendersLikeJinja) {
  const auto golden = testing::load_tokenizer_golden("chat.json");
  const auto format = recognize_chat_template(golden["smollm2_template"]["text"]);
  ASSERT_TRUE(format);
  EXPECT_EQ(format->name, "chatml");
  EXPECT_EQ(format->default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  int compared = 0;
  for (const auto& item : golden["cases"]) {
    EXPECT_EQ(render_chat(*format, messages_of(item), item["add_generation_prompt"]), item["smollm2_jinja"])
        << item["name"];
    ++compared;
  }
  EXPECT_GE(compared, 12);
}

TEST(ChatTemplate, BuiltinFormatsRenderLikeLlamaCpp) {
  const auto golden = testing::load_tokenizer_golden("chat.json");
  const ChatFormat chatml{ChatFormat::Kind::ChatML, "chatml", {}};
  const ChatFormat gemma{ChatFormat::Kind::Gemma, "gemma", {}};
  for (const auto& item : golden["cases"]) {
    const auto messages = messages_of(item);
    const bool prompt = item["add_generation_prompt"];
    EXPECT_EQ(render_chat(chatml, messages, prompt), item["llama_cpp"]["chatml"]) << item["name"];
    EXPECT_EQ(render_chat(gemma, messages, prompt), item["llama_cpp"]["gemma"]) << item["name"];
  }
}

TEST(ChatTemplate, ModelTemplatesAreRecognizedOrExplained) {
  TILLER_REQUIRE_MODEL(smollm, "smollm2-135m-instruct");
  TILLER_REQUIRE_MODEL(gemma, "gemma-3-270m");
  const auto golden = testing::load_tokenizer_golden("chat.json");
  const auto smollm_file = gguf::File::open(smollm);
  EXPECT_EQ(smollm_file.get_string("tokenizer.chat_template"), golden["smollm2_template"]["text"]);
  EXPECT_EQ(resolve_chat_format(smollm_file, "").default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  // Gemma 3 270M (base) carries no template: an error that says how to give one.
  const auto gemma_file = gguf::File::open(gemma);
  try {
    resolve_chat_format(gemma_file, "");
    FAIL() << "no error for a model without a chat template";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("--chat-template"), std::string::npos) << error.what();
  }
  EXPECT_EQ(resolve_chat_format(gemma_file, "gemma").kind, ChatFormat::Kind::Gemma);
}

TEST(ChatTemplate, UnrecognizedTemplatesAreClearErrors) {
  EXPECT_FALSE(recognize_chat_template("{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"));
  gguf::Writer writer;
  writer.set("tokenizer.chat_template", "{{ messages }}");
  const auto bytes = writer.to_bytes();
  const auto file = gguf::File::parse(bytes, "custom.gguf");
  try {
    resolve_chat_format(file, "");
    FAIL() << "an unknown template was accepted";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("not a chat format Tiller recognizes"), std::string::npos) << message;
    EXPECT_NE(message.find("--chat-template"), std::string::npos) << message;
  }
  EXPECT_THROW(resolve_chat_format(file, "/nonexistent/template.jinja"), Error);
  // A user's own template file is recognized like an embedded one.
  const std::string path = testing::write_scratch("mine.jinja", std::vector<uint8_t>{});
  {
    std::ofstream out(path);
    out << "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}";
  }
  EXPECT_EQ(resolve_chat_format(file, path).kind, ChatFormat::Kind::Gemma);
}

}  // namespace
}  // namespace tiller
