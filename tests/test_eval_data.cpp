// The texts of eval/texts/ (docs/evaluation.md: the ActAdd reproduction's on- and
// off-topic texts, sentiment texts, neutral texts and sampling prompts): enough of
// each, no duplicates, lengths as written, the off-topic and neutral texts free of
// the topic's words, and every prompt long enough for the reproduction's longest
// ActAdd pair on both models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_files.h"
#include "tiller/model.h"
#include "tiller/sweep.h"

namespace tiller {
namespace {

const std::filesystem::path kEval = std::filesystem::path(TILLER_SOURCE_DIR) / "eval";

std::vector<std::string> lines_of(const std::string& name) {
  std::ifstream in(kEval / "texts" / name);
  EXPECT_TRUE(in) << name;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

size_t words_in(const std::string& text) {
  std::istringstream in(text);
  size_t n = 0;
  for (std::string word; in >> word;) ++n;
  return n;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

struct TextFile {
  const char* name;
  size_t at_least, min_words, max_words;
};

TEST(EvalData, EveryFileHasEnoughDistinctTextsOfTheRightLength) {
  for (const TextFile f : {TextFile{"weddings.txt", 50, 35, 80}, TextFile{"unrelated.txt", 50, 35, 80},
                           TextFile{"positive.txt", 50, 35, 80}, TextFile{"negative.txt", 50, 35, 80},
                           TextFile{"neutral.txt", 50, 35, 80}, TextFile{"prompts.txt", 20, 4, 12}}) {
    const auto lines = lines_of(f.name);
    EXPECT_GE(lines.size(), f.at_least) << f.name;
    EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()).size(), lines.size()) << f.name << ": duplicates";
    for (size_t i = 0; i < lines.size(); ++i) {
      const size_t n = words_in(lines[i]);
      EXPECT_TRUE(n >= f.min_words && n <= f.max_words) << f.name << ":" << i + 1 << ": " << n << " words";
    }
  }
}

TEST(EvalData, OffTopicAndNeutralTextsLackTheTopicsWords) {
  const std::vector<std::string> wedding_words = {"wed", "marr", "bride", "groom", "honeymoon", "vow", "ceremon"};
  for (const char* name : {"unrelated.txt", "neutral.txt"}) {
    const auto lines = lines_of(name);
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string text = lower(lines[i]);
      for (const auto& word : wedding_words) {
        EXPECT_EQ(text.find(word), std::string::npos) << name << ":" << i + 1 << " has '" << word << "'";
      }
    }
  }
}

TEST(EvalData, TheExampleSweepSpecLoadsWithItsTexts) {
  const auto spec = SweepSpec::load(kEval / "weddings-sweep.json");
  EXPECT_EQ(spec.eval.on_topic.size(), lines_of("weddings.txt").size());
  EXPECT_EQ(spec.eval.off_topic.size(), lines_of("unrelated.txt").size());
  ASSERT_TRUE(spec.eval.topic.has_value());
  EXPECT_EQ(spec.eval.topic->prompts.size(), lines_of("prompts.txt").size());
  EXPECT_EQ(spec.cells(), 9u);
}

// An ActAdd tensor longer than a prompt is an error (Steering::check_prompt): every
// prompt must be at least as long as the reproduction's longest pair, BOS and all.
TEST(EvalData, PromptsAreLongerThanTheLongestActAddPair) {
  for (const char* name : {"smollm2-135m-instruct", "gemma-3-270m"}) {
    TILLER_REQUIRE_MODEL(path, name);
    const auto model = Model::load(path);
    const auto& tokenizer = model->tokenizer();
    const size_t pair = std::max(tokenizer.tokenize("I talk about weddings constantly").size(),
                                 tokenizer.tokenize("I do not talk about weddings constantly").size());
    for (const auto& prompt : lines_of("prompts.txt")) {
      EXPECT_GE(tokenizer.tokenize(prompt).size(), pair) << name << ": " << prompt;
    }
  }
}

}  // namespace
}  // namespace tiller
