// Broken files are built byte by byte here, independently of gguf::Writer, so a
// mistake shared by the reader and the writer cannot hide.
#include "support/bad_gguf_corpus.h"

#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace tiller::testing {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kGgufMagic = 0x46554747;
enum : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };
enum : uint32_t { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8 };

template <class T>
void put(Bytes& out, T value) {
  const auto* raw = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), raw, raw + sizeof(T));
}
void put_string(Bytes& out, const std::string& text) {
  put<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}
void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

// One metadata entry with a value already encoded.
Bytes kv(const std::string& key, uint32_t type, const Bytes& payload) {
  Bytes out;
  put_string(out, key);
  put<uint32_t>(out, type);
  append(out, payload);
  return out;
}
template <class T>
Bytes scalar(T value) {
  Bytes out;
  put<T>(out, value);
  return out;
}
Bytes string_payload(const std::string& text) {
  Bytes out;
  put_string(out, text);
  return out;
}
Bytes tensor_info(const std::string& name, const std::vector<uint64_t>& shape, uint32_t type,
                  uint64_t offset) {
  Bytes out;
  put_string(out, name);
  put<uint32_t>(out, static_cast<uint32_t>(shape.size()));
  for (uint64_t extent : shape) put<uint64_t>(out, extent);
  put<uint32_t>(out, type);
  put<uint64_t>(out, offset);
  return out;
}

struct RawFile {
  uint32_t magic = kGgufMagic;
  uint32_t version = 3;
  std::vector<Bytes> entries;
  std::vector<Bytes> infos;
  uint64_t alignment = 32;
  Bytes data;
  int64_t tensor_count = -1;  // -1: the number of infos
  int64_t kv_count = -1;      // -1: the number of entries

  Bytes build(uint64_t* infos_start = nullptr, uint64_t* data_start = nullptr) const {
    Bytes out;
    put<uint32_t>(out, magic);
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensor_count >= 0 ? static_cast<uint64_t>(tensor_count) : infos.size());
    put<uint64_t>(out, kv_count >= 0 ? static_cast<uint64_t>(kv_count) : entries.size());
    for (const auto& entry : entries) append(out, entry);
    if (infos_start) *infos_start = out.size();
    for (const auto& info : infos) append(out, info);
    while (out.size() % alignment != 0) out.push_back(0);
    if (data_start) *data_start = out.size();
    append(out, data);
    return out;
  }
};

// A float array, a string array and an array of arrays, to give truncation
// something to cut inside.
RawFile reference_file() {
  RawFile file;
  file.entries.push_back(kv("general.architecture", STRING, string_payload("llama")));
  file.entries.push_back(kv("test.u8", U8, scalar<uint8_t>(200)));
  file.entries.push_back(kv("test.i8", I8, scalar<int8_t>(-100)));
  file.entries.push_back(kv("test.u16", U16, scalar<uint16_t>(60000)));
  file.entries.push_back(kv("test.i16", I16, scalar<int16_t>(-30000)));
  file.entries.push_back(kv("test.u32", U32, scalar<uint32_t>(4000000000u)));
  file.entries.push_back(kv("test.i32", I32, scalar<int32_t>(-2000000000)));
  file.entries.push_back(kv("test.f32", F32, scalar<float>(0.25f)));
  file.entries.push_back(kv("test.bool", BOOL, scalar<uint8_t>(1)));
  file.entries.push_back(kv("test.u64", U64, scalar<uint64_t>(1ull << 60)));
  file.entries.push_back(kv("test.i64", I64, scalar<int64_t>(-(1ll << 60))));
  file.entries.push_back(kv("test.f64", F64, scalar<double>(-1.5)));
  Bytes floats;
  put<uint32_t>(floats, F32);
  put<uint64_t>(floats, 3);
  for (float v : {1.0f, 2.0f, 3.0f}) put<float>(floats, v);
  file.entries.push_back(kv("test.floats", ARRAY, floats));
  Bytes strings;
  put<uint32_t>(strings, STRING);
  put<uint64_t>(strings, 2);
  put_string(strings, "alpha");
  put_string(strings, "\xce\xb2\xce\xb5\xcf\x84\xce\xb1");
  file.entries.push_back(kv("test.strings", ARRAY, strings));
  Bytes nested;
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 2);
  for (int i = 0; i < 2; ++i) {
    put<uint32_t>(nested, I32);
    put<uint64_t>(nested, 2);
    put<int32_t>(nested, i);
    put<int32_t>(nested, -i);
  }
  file.entries.push_back(kv("test.nested", ARRAY, nested));

  // Three tensors: F32 [8] at 0, Q8_0 [32 x 2] at 32, F16 [4 x 2] at 128.
  file.infos.push_back(tensor_info("norm.weight", {8}, T_F32, 0));
  file.infos.push_back(tensor_info("matrix.weight", {32, 2}, T_Q8_0, 32));
  file.infos.push_back(tensor_info("half.weight", {4, 2}, T_F16, 128));
  file.data.assign(128 + 16, 0);
  for (int i = 0; i < 8; ++i) {
    const float value = static_cast<float>(i) * 0.5f;
    std::memcpy(file.data.data() + 4 * i, &value, 4);
  }
  for (int block = 0; block < 2; ++block) {
    const uint16_t scale = 0x3c00;  // 1.0 in f16
    std::memcpy(file.data.data() + 32 + 34 * block, &scale, 2);
    for (int j = 0; j < 32; ++j) file.data[32 + 34 * block + 2 + j] = static_cast<uint8_t>(j - 16);
  }
  for (int i = 0; i < 8; ++i) {
    const uint16_t half = 0x3800;  // 0.5
    std::memcpy(file.data.data() + 128 + 2 * i, &half, 2);
  }
  return file;
}

// A minimal file: one key, one F32 tensor, with one part replaced.
RawFile minimal_file() {
  RawFile file;
  file.entries.push_back(kv("general.architecture", STRING, string_payload("llama")));
  file.infos.push_back(tensor_info("w", {4}, T_F32, 0));
  file.data.assign(16, 0);
  return file;
}

Bytes nested_arrays(int depth) {
  Bytes out;
  for (int i = 0; i < depth; ++i) {
    put<uint32_t>(out, ARRAY);
    put<uint64_t>(out, 1);
  }
  put<uint32_t>(out, U8);
  put<uint64_t>(out, 1);
  out.push_back(7);
  return out;
}

}  // namespace

std::vector<uint8_t> valid_reference_gguf() { return reference_file().build(); }

ReferenceLayout reference_layout() {
  ReferenceLayout layout{};
  layout.metadata_start = 24;
  reference_file().build(&layout.tensor_infos_start, &layout.data_start);
  layout.data_end = layout.data_start + 128 + 16;
  return layout;
}

BadGguf truncated_reference(uint64_t length) {
  Bytes bytes = valid_reference_gguf();
  bytes.resize(length);
  std::string expected = length < 4 ? "too small" : "truncated";
  const ReferenceLayout layout = reference_layout();
  if (length >= layout.data_start) expected = "runs past the end";
  return {fmt::format("truncated-at-{}", length), std::move(bytes), expected};
}

std::vector<BadGguf> bad_gguf_cases() {
  std::vector<BadGguf> cases;
  auto add = [&](std::string name, const RawFile& file, std::string expected) {
    cases.push_back({std::move(name), file.build(), std::move(expected)});
  };
  auto add_bytes = [&](std::string name, Bytes bytes, std::string expected) {
    cases.push_back({std::move(name), std::move(bytes), std::move(expected)});
  };
  constexpr uint64_t kHuge = std::numeric_limits<uint64_t>::max();

  add_bytes("three-bytes", {'G', 'G', 'U'}, "too small");
  {
    RawFile f = minimal_file();
    f.magic = 0x4c4d4747;  // "GGML"
    add("wrong-magic", f, "not a GGUF file");
  }
  add_bytes("text-file", Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'}, "not a GGUF file");
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    RawFile f = minimal_file();
    f.version = version;
    add(fmt::format("version-{}", version), f, "version");
  }
  {
    RawFile f = minimal_file();
    f.version = 0x03000000;
    add("big-endian", f, "big-endian");
  }
  {
    RawFile f = minimal_file();
    f.tensor_count = static_cast<int64_t>(1ull << 62);
    add("absurd-tensor-count", f, "cannot fit");
    f = minimal_file();
    f.kv_count = std::numeric_limits<int64_t>::max();
    add("absurd-kv-count", f, "cannot fit");
    f = minimal_file();
    f.kv_count = 5;  // claims more entries than there are: the tensor infos are read as entries
    add("kv-count-too-large", f, "empty metadata key");
    f = minimal_file();
    f.tensor_count = 3;  // the data section is read as tensor infos
    add("tensor-count-too-large", f, "empty tensor name");
  }
  {
    RawFile f = minimal_file();
    Bytes entry;
    put<uint64_t>(entry, kHuge);
    f.entries[0] = entry;
    add("key-length-huge", f, "exceeds the limit");
    Bytes entry2;
    put<uint64_t>(entry2, 5000);
    entry2.push_back('k');
    f.entries[0] = entry2;
    add("key-length-past-end", f, "key of 5000 bytes runs past the end");
  }
  {
    RawFile f = minimal_file();
    f.entries[0] = kv("", STRING, string_payload("x"));
    add("empty-key", f, "empty metadata key");
  }
  {
    RawFile f = minimal_file();
    Bytes payload;
    put<uint64_t>(payload, kHuge / 2);
    f.entries[0] = kv("general.name", STRING, payload);
    add("string-length-past-end", f, "runs past the end");
  }
  for (uint32_t type : {13u, 99u, 0xffffffffu}) {
    RawFile f = minimal_file();
    f.entries.push_back(kv("bad.type", type, scalar<uint32_t>(0)));
    add(fmt::format("unknown-value-type-{}", type), f, "unknown metadata value type");
  }
  {
    RawFile f = minimal_file();
    Bytes payload;
    put<uint32_t>(payload, 77);
    put<uint64_t>(payload, 1);
    f.entries.push_back(kv("bad.array", ARRAY, payload));
    add("unknown-array-element-type", f, "unknown array element type");
  }
  for (uint32_t element : {U8, STRING, ARRAY, F64}) {
    RawFile f = minimal_file();
    Bytes payload;
    put<uint32_t>(payload, element);
    put<uint64_t>(payload, kHuge / 3);
    f.entries.push_back(kv("bad.array", ARRAY, payload));
    add(fmt::format("absurd-array-count-type-{}", element), f, "cannot fit");
  }
  {
    RawFile f = minimal_file();
    f.entries.push_back(kv("deep.array", ARRAY, nested_arrays(8)));
    add("arrays-nested-9-deep", f, "nested deeper");
    f = minimal_file();
    f.entries.push_back(kv("deep.array", ARRAY, nested_arrays(100000)));
    add("arrays-nested-100000-deep", f, "nested deeper");
  }
  {
    RawFile f = minimal_file();
    f.entries.push_back(kv("general.architecture", STRING, string_payload("gemma3")));
    add("duplicate-key", f, "duplicate metadata key");
  }
  {
    RawFile f = minimal_file();
    f.entries.push_back(kv("flag", BOOL, scalar<uint8_t>(2)));
    add("bool-out-of-range", f, "neither 0 nor 1");
  }
  {
    RawFile f = minimal_file();
    f.entries.push_back(kv("general.alignment", STRING, string_payload("32")));
    add("alignment-not-u32", f, "must be a u32");
    for (uint32_t alignment : {0u, 3u, 48u}) {
      f = minimal_file();
      f.entries.push_back(kv("general.alignment", U32, scalar<uint32_t>(alignment)));
      add(fmt::format("alignment-{}", alignment), f, "not a power of two");
    }
    f = minimal_file();
    f.entries.push_back(kv("general.alignment", U32, scalar<uint32_t>(1u << 31)));
    add("alignment-2^31", f, "data section would start");
  }
  for (uint32_t dims : {0u, 5u, 1000u}) {
    RawFile f = minimal_file();
    Bytes info;
    put_string(info, "w");
    put<uint32_t>(info, dims);
    for (uint32_t d = 0; d < std::min(dims, 5u); ++d) put<uint64_t>(info, 1);
    put<uint32_t>(info, T_F32);
    put<uint64_t>(info, 0);
    f.infos[0] = info;
    add(fmt::format("tensor-{}-dims", dims), f, "dimensions (1 to 4 allowed)");
  }
  {
    RawFile f = minimal_file();
    f.infos[0] = tensor_info("w", {1ull << 40, 1ull << 40}, T_F32, 0);
    add("tensor-element-count-overflow", f, "overflow");
    f.infos[0] = tensor_info("w", {kHuge}, T_F32, 0);
    add("tensor-dimension-negative", f, "overflow");
    f.infos[0] = tensor_info("w", {1ull << 62}, T_F32, 0);
    add("tensor-byte-size-overflow", f, "overflows");
    f.infos[0] = tensor_info("w", {1ull << 40}, T_F32, 0);
    add("tensor-larger-than-file", f, "runs past the end of the file");
  }
  for (uint32_t type : {4u, 5u, 31u, 1000u}) {
    RawFile f = minimal_file();
    f.infos[0] = tensor_info("w", {4}, type, 0);
    add(fmt::format("unknown-tensor-type-{}", type), f, "unknown tensor type id");
  }
  {
    RawFile f = minimal_file();
    f.infos[0] = tensor_info("w", {33}, T_Q4_0, 0);
    f.data.assign(64, 0);
    add("row-not-whole-blocks", f, "not a multiple of the Q4_0 block size");
  }
  {
    RawFile f = minimal_file();
    f.infos[0] = tensor_info("w", {4}, T_F32, 8);
    add("misaligned-offset", f, "not a multiple of the alignment");
    f.infos[0] = tensor_info("w", {4}, T_F32, 1ull << 40);
    add("offset-past-end", f, "runs past the end of the file");
    f.infos[0] = tensor_info("w", {4}, T_F32, kHuge - 31);
    add("offset-wraps-around", f, "runs past the end of the file");
  }
  {
    RawFile f = minimal_file();
    f.infos.push_back(tensor_info("w", {4}, T_F32, 0));
    f.data.assign(64, 0);
    add("duplicate-tensor-name", f, "duplicate tensor name");
    f = minimal_file();
    f.infos.push_back(tensor_info("v", {8}, T_F32, 0));
    f.data.assign(64, 0);
    add("overlapping-tensors", f, "overlap");
    f = minimal_file();
    f.infos[0] = tensor_info("", {4}, T_F32, 0);
    add("empty-tensor-name", f, "empty tensor name");
    Bytes info;
    put<uint64_t>(info, kHuge);
    f.infos[0] = info;
    add("tensor-name-length-huge", f, "exceeds the limit");
  }
  {
    RawFile f = minimal_file();
    f.data.clear();
    add("data-section-missing", f, "runs past the end");
    f = minimal_file();
    f.data.resize(15);
    add("data-section-short", f, "runs past the end");
  }
  return cases;
}

}  // namespace tiller::testing
