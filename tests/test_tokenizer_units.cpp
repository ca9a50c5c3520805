// Tokenizer behaviour on tiny vocabularies built here: special-token precedence,
// byte fallback, streaming helpers, and the errors for vocabularies Tiller cannot read.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/run_process.h"
#include "support/test_files.h"
#include "common/fail.h"
#include "tiller/tokenizer.h"
#include "tokenizer/merge_ranks.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace tiller {
namespace {

TEST(MergeRanks, FindsEachPairByItsHalvesAndTheFirstRankOfARepeatWins) {
  // Rank 4 repeats rank 1's pair; rank 5 has no separating space; rank 6's left half
  // is a space (the split is at the first space after the first byte).
  const MergeRanks ranks({"a b", "ab c", "Ġ t", "Ġt he", "ab c", "nospace", "  x", "abc d"});
  EXPECT_EQ(ranks.find("a", "b"), 0);
  EXPECT_EQ(ranks.find("ab", "c"), 1);
  EXPECT_EQ(ranks.find("Ġ", "t"), 2);
  EXPECT_EQ(ranks.find("Ġt", "he"), 3);
  EXPECT_EQ(ranks.find(" ", "x"), 6);
  EXPECT_EQ(ranks.find("abc", "d"), 7);
  // The halves matter, not their concatenation; order matters; nothing else matches.
  EXPECT_EQ(ranks.find("a", "bc"), -1);
  EXPECT_EQ(ranks.find("b", "a"), -1);
  EXPECT_EQ(ranks.find("nospace", ""), -1);
  EXPECT_EQ(ranks.find("", ""), -1);
  EXPECT_EQ(ranks.find("x", "y"), -1);
  EXPECT_EQ(MergeRanks({}).find("a", "b"), -1);
}

TEST(MergeRanks, ThousandsOfMergesEachFindTheirOwnRank) {
  // Enough pairs to make the probe sequences collide and wrap around the table.
  std::vector<std::string> merges;
  for (int i = 0; i < 5000; ++i) merges.push_back(fmt::format("{} {}", i % 97, i));
  const MergeRanks ranks(merges);
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(ranks.find(std::to_string(i % 97), std::to_string(i)), i) << merges[static_cast<size_t>(i)];
    ASSERT_EQ(ranks.find(std::to_string(i), std::to_string(i % 97)), i == i % 97 ? i : -1) << i;
  }
}

TEST(MergeRanks, ALeftHalfTooLongForItsLengthIsAnError) {
  EXPECT_THROW(MergeRanks({std::string(70000, 'a') + " b"}), Error);
}

// A SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then `extra`.
gguf::Writer spm_vocabulary(const std::vector<std::pair<std::string, int32_t>>& extra) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  for (const auto& [text, type] : extra) {
    tokens.push_back(text);
    types.push_back(type);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  gguf::Writer writer;
  writer.set("tokenizer.ggml.model", "llama");
  writer.set("tokenizer.ggml.tokens", gguf::Array{tokens});
  writer.set("tokenizer.ggml.token_type", gguf::Array{types});
  writer.set("tokenizer.ggml.scores", gguf::Array{scores});
  writer.set("tokenizer.ggml.add_space_prefix", false);
  return writer;
}

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

Loaded load(const gguf::Writer& writer) {
  Loaded loaded;
  loaded.bytes = writer.to_bytes();
  loaded.file = std::make_unique<gguf::File>(gguf::File::parse(loaded.bytes, "tiny.gguf"));
  loaded.tokenizer = Tokenizer::from_gguf(*loaded.file);
  return loaded;
}

constexpr TokenId kFirstExtra = 3 + 256;

TEST(TokenizerUnits, LongerSpecialTokensAreCutFirstLikeLlamaCpp) {
  // "bcd" is longer, so it is cut before "ab" even though "ab" starts earlier.
  const auto loaded = load(spm_vocabulary({{"ab", 4}, {"bcd", 4}}));
  const auto ids = loaded.tokenizer->tokenize("abcd", {false, false});
  EXPECT_EQ(ids, (std::vector<TokenId>{3 + 'a', kFirstExtra + 1}));
  // Control tokens are cut only when special parsing is on; user-defined always.
  EXPECT_EQ(loaded.tokenizer->tokenize("<s>", {false, true}), (std::vector<TokenId>{1}));
  EXPECT_EQ(loaded.tokenizer->tokenize("<s>", {false, false}),
            (std::vector<TokenId>{3 + '<', 3 + 's', 3 + '>'}));
  EXPECT_EQ(loaded.tokenizer->tokenize("<s>", {true, false}).front(), 1);  // BOS added
}

TEST(TokenizerUnits, SentencePieceMergesByScoreAndFallsBackToBytes) {
  // "ab" scores higher than "bc" (lower id, less negative score): "abc" -> ab + c.
  const auto loaded = load(spm_vocabulary({{"ab", 1}, {"bc", 1}, {"c", 1}, {"\xe2\x96\x81x", 1}}));
  EXPECT_EQ(loaded.tokenizer->tokenize("abc", {false, false}),
            (std::vector<TokenId>{kFirstExtra, kFirstExtra + 2}));
  // A space becomes U+2581 and merges with the next character.
  EXPECT_EQ(loaded.tokenizer->tokenize(" x", {false, false}), (std::vector<TokenId>{kFirstExtra + 3}));
  // Characters with no token fall back to their UTF-8 bytes.
  EXPECT_EQ(loaded.tokenizer->tokenize("\xc3\xa9", {false, false}), (std::vector<TokenId>{3 + 0xc3, 3 + 0xa9}));
  EXPECT_EQ(loaded.tokenizer->detokenize(std::vector<TokenId>{3 + 0xc3, 3 + 0xa9, kFirstExtra + 3}), "\xc3\xa9 x");
}

TEST(TokenizerUnits, StreamingHoldsBackIncompleteCharacters) {
  EXPECT_EQ(incomplete_utf8_suffix("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xe2\x96"), 2u);
  EXPECT_EQ(incomplete_utf8_suffix("\xf0\x9f\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_suffix("\xf0\x9f\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("\xc3"), 1u);
  EXPECT_EQ(incomplete_utf8_suffix("x\x80"), 0u);  // a stray continuation byte never completes
}

TEST(TokenizerUnits, TextStreamPrintsWholeCharactersOnly) {
  const auto loaded = load(spm_vocabulary({{"ab", 1}}));
  TokenTextStream stream(*loaded.tokenizer);
  // U+1F600 as four byte tokens: nothing is printable until the last arrives.
  EXPECT_EQ(stream.push(3 + 0xf0), "");
  EXPECT_EQ(stream.push(3 + 0x9f), "");
  EXPECT_EQ(stream.push(3 + 0x98), "");
  EXPECT_EQ(stream.push(3 + 0x80), "\xf0\x9f\x98\x80");
  EXPECT_EQ(stream.push(kFirstExtra), "ab");
  EXPECT_EQ(stream.push(3 + 0xc3), "");
  EXPECT_EQ(stream.finish(), "\xc3");  // a truncated character is still given back at the end
}

std::string load_error(const gguf::Writer& writer) {
  try {
    load(writer);
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}

TEST(TokenizerUnits, UnsupportedVocabulariesAreClearErrors) {
  gguf::Writer bert = spm_vocabulary({});
  bert.set("tokenizer.ggml.model", "bert");
  EXPECT_EQ(load_error(bert), "tiny.gguf: tokenizer model 'bert' is not supported (supported: gpt2, llama)");

  gguf::Writer unknown_pre = spm_vocabulary({});
  unknown_pre.set("tokenizer.ggml.model", "gpt2");
  unknown_pre.set("tokenizer.ggml.pre", "bogus");
  unknown_pre.set("tokenizer.ggml.merges", gguf::Array{std::vector<std::string>{}});
  EXPECT_NE(load_error(unknown_pre).find("pre-tokenizer 'bogus' is not supported (supported: "), std::string::npos)
      << load_error(unknown_pre);

  gguf::Writer no_merges = spm_vocabulary({});
  no_merges.set("tokenizer.ggml.model", "gpt2");
  no_merges.set("tokenizer.ggml.pre", "gpt-2");
  EXPECT_NE(load_error(no_merges).find("tokenizer.ggml.merges is missing"), std::string::npos);

  gguf::Writer duplicate = spm_vocabulary({{"ab", 1}, {"ab", 1}});
  EXPECT_NE(load_error(duplicate).find("repeats the text of token"), std::string::npos);

  gguf::Writer none;
  none.set("general.architecture", "llama");
  EXPECT_NE(load_error(none).find("no tokenizer"), std::string::npos);

  gguf::Writer bos_missing = spm_vocabulary({});
  bos_missing.set("tokenizer.ggml.bos_token_id", uint32_t{100000});
  bos_missing.set("tokenizer.ggml.add_bos_token", true);
  // An out-of-range id keeps the default (1), as llama.cpp does.
  EXPECT_EQ(load(bos_missing).tokenizer->bos(), 1);
}

TEST(TokenizerCli, TextFromTheFileCannotBreakTheOneLineError) {
  gguf::Writer writer = spm_vocabulary({});
  writer.set("tokenizer.ggml.model", "evil\nsecond line\r");
  const std::string path = (testing::scratch_dir() / "evil.gguf").string();
  writer.write(path);
  const auto result = testing::run_process({TILLER_BINARY, "tokenize", "-m", path, "x"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_NE(result.err.find("evil\\nsecond line\\x0d"), std::string::npos) << result.err;
}

TEST(TokenizerUnits, RunsPastTheRegexEnginesDefaultMatchLimitStillSplitRight) {
  // Ten million spaces and a letter exceed PCRE2's default match limit with the
  // llama3 pattern; the words must still be llama.cpp's: all spaces but the last,
  // then " x".
  const PreTokenizer llama3("llama3");
  const size_t n = 10'200'000;
  std::vector<uint32_t> code_points(n, ' ');
  code_points.push_back('x');
  const auto words = llama3.split(code_points);
  ASSERT_EQ(words.size(), 2u);
  EXPECT_EQ(words[0], std::make_pair(size_t{0}, n - 1));
  EXPECT_EQ(words[1], std::make_pair(n - 1, n + 1));
}

TEST(TokenizerUnits, MongolianVowelSeparatorIsNotWhitespace) {
  // llama.cpp's whitespace is Unicode White_Space, which U+180E is not: " \u180E"
  // is one word of non-letters, not a space and then a separate character.
  const PreTokenizer gpt2("gpt-2");
  const std::vector<uint32_t> text = {'x', ' ', 0x180E, 'y'};
  const std::vector<std::pair<size_t, size_t>> expected = {{0, 1}, {1, 3}, {3, 4}};
  EXPECT_EQ(gpt2.split(text), expected);
  // U+2003 is whitespace: of two before a letter, the first ends the run and the
  // second stands alone (only U+0020 joins the next word).
  const std::vector<uint32_t> spaced = {'x', 0x2003, 0x2003, 'y'};
  const std::vector<std::pair<size_t, size_t>> expected_spaced = {{0, 1}, {1, 2}, {2, 3}, {3, 4}};
  EXPECT_EQ(gpt2.split(spaced), expected_spaced);
}

TEST(TokenizerCli, JsonIdsMatchTheLibraryAndFlagsWork) {
  TILLER_REQUIRE_MODEL(gemma, "gemma-3-270m");
  const auto file = gguf::File::open(gemma);
  const auto tokenizer = Tokenizer::from_gguf(file);
  const std::string text = "Hello <start_of_turn> world";
  auto ids_of = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {TILLER_BINARY, "tokenize", "-m", "gemma-3-270m", "--json", text};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const auto result = testing::run_process(argv);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out)["ids"].get<std::vector<TokenId>>();
  };
  EXPECT_EQ(ids_of({}), tokenizer->tokenize(text, {true, false}));
  EXPECT_EQ(ids_of({"--no-add-special"}), tokenizer->tokenize(text, {false, false}));
  EXPECT_EQ(ids_of({"--parse-special"}), tokenizer->tokenize(text, {true, true}));
  EXPECT_EQ(ids_of({}).front(), tokenizer->bos());

  const std::string path = testing::write_scratch("nul.txt", {'a', 0, 'b', '\n'});
  const auto from_file = testing::run_process({TILLER_BINARY, "tokenize", "-m", "gemma-3-270m", "-f", path, "--json"});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(nlohmann::json::parse(from_file.out)["ids"].get<std::vector<TokenId>>(),
            tokenizer->tokenize(std::string("a\0b\n", 4), {true, false}));
}

TEST(TokenizerCli, MissingInputAndConflictingInputsAreErrors) {
  const auto none = testing::run_process({TILLER_BINARY, "tokenize"});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("TEXT or -f FILE is required"), std::string::npos) << none.err;
  const auto directory = testing::run_process({TILLER_BINARY, "tokenize", "-f", testing::scratch_dir().string()});
  EXPECT_EQ(directory.exit_code, 1) << directory.err;
  EXPECT_NE(directory.err.find("not a regular file"), std::string::npos) << directory.err;
  EXPECT_EQ(std::count(directory.err.begin(), directory.err.end(), '\n'), 1) << directory.err;
  const auto both = testing::run_process({TILLER_BINARY, "tokenize", "text", "-f", "/etc/hostname"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  const auto missing = testing::run_process({TILLER_BINARY, "tokenize", "-f", "/nonexistent/file.txt"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
}

}  // namespace
}  // namespace tiller
