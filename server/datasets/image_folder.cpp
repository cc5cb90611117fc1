#include "server/datasets/image_folder.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/datasets/dataset_error.hpp"
#include "server/datasets/image_decode.hpp"
#include "server/datasets/tar_archive.hpp"

namespace edgeprune::datasets {
namespace {

constexpr std::uint64_t kMaxImageFile = 64ull * 1024 * 1024;
constexpr std::int64_t kMaxSide = 4096;

std::string_view Stripped(std::string_view name) {
  while (name.starts_with("./")) name.remove_prefix(2);
  return name;
}

// "train/<class>/<file>" → (split, class); nullopt for anything else.
struct Member {
  bool train = false;
  std::string label;
};
std::optional<Member> Parse(std::string_view name) {
  name = Stripped(name);
  const bool train = name.starts_with("train/");
  if (!train && !name.starts_with("test/")) return std::nullopt;
  name.remove_prefix(train ? 6 : 5);
  const auto slash = name.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == name.size())
    return std::nullopt;
  if (name.find('/', slash + 1) != std::string_view::npos) return std::nullopt;
  if (name.substr(slash + 1).starts_with(".")) return std::nullopt;  // "._x.png" forks, dotfiles
  return Member{train, std::string(name.substr(0, slash))};
}

Result<std::string> ReadAll(ByteStream& in, std::uint64_t size, const std::string& what) {
  if (size > kMaxImageFile) return TooLarge(what + " is larger than 64 MiB");
  std::string bytes(size, '\0');
  std::size_t have = 0;
  while (have < size) {
    EP_ASSIGN_OR_RETURN(std::size_t got, in.Read(bytes.data() + have, size - have));
    if (got == 0) return Invalid(what + " is truncated");
    have += got;
  }
  return bytes;
}

Result<std::vector<std::int64_t>> ParseShape(const std::string& text) {
  std::vector<std::int64_t> shape;
  std::string digits;
  for (char c : text + ",") {
    if (c >= '0' && c <= '9') {
      if (digits.size() > 6) return Invalid("shape.txt holds a dimension that is too large");
      digits += c;
    } else if (c == ',' || c == ' ' || c == 'x' || c == '\n' || c == '\r') {
      if (!digits.empty()) shape.push_back(std::stoll(digits));
      digits.clear();
    } else {
      return Invalid("shape.txt must hold C,H,W (e.g. 3,32,32)");
    }
  }
  if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] < 1 || shape[2] < 1 ||
      shape[1] > kMaxSide || shape[2] > kMaxSide) {
    return Invalid("shape.txt must hold C,H,W with C 1 or 3 and H, W in [1, 4096]");
  }
  return shape;
}

struct Layout {
  std::vector<std::int64_t> shape;  // C, H, W
  std::vector<std::string> classes;
  std::int64_t train = 0, test = 0;
};

Result<Layout> Survey(const TarOpener& open) {
  Layout layout;
  std::set<std::string> train_classes, test_classes;
  std::optional<std::string> shape_text;
  EP_RETURN_IF_ERROR(open([&](ByteStream& in) -> Status {
    TarReader tar(in);
    while (true) {
      EP_ASSIGN_OR_RETURN(auto entry, tar.Next());
      if (!entry) return Ok();
      if (Stripped(entry->name) == "shape.txt") {
        if (entry->size > 256) return Invalid("shape.txt is too long");
        EP_ASSIGN_OR_RETURN(shape_text, ReadAll(tar.entry(), entry->size, "shape.txt"));
        continue;
      }
      auto m = Parse(entry->name);
      if (!m) continue;
      (m->train ? train_classes : test_classes).insert(m->label);
      ++(m->train ? layout.train : layout.test);
    }
  }));
  if (!shape_text) return Invalid("the image folder has no shape.txt declaring C,H,W");
  EP_ASSIGN_OR_RETURN(layout.shape, ParseShape(*shape_text));
  if (layout.train == 0 || layout.test == 0) {
    return Invalid("the image folder needs images under train/<class>/ and test/<class>/");
  }
  for (const auto& c : test_classes) {
    if (!train_classes.count(c)) return Invalid("test class '" + c + "' has no training images");
  }
  layout.classes.assign(train_classes.begin(), train_classes.end());
  return layout;
}

// One split's images as x (uint8 [N, C, H, W]) and then its labels.
Status StreamSplit(const TarOpener& open, const Layout& layout, bool train, std::uint64_t& budget,
                   ArraySink& sink) {
  const auto c = layout.shape[0], h = layout.shape[1], w = layout.shape[2];
  const std::int64_t n = train ? layout.train : layout.test;
  const auto bytes = static_cast<std::uint64_t>(n) * c * h * w;
  if (bytes > budget) return TooLarge("the decoded images exceed the data set limit");
  budget -= bytes;
  std::map<std::string, std::int64_t> index;
  for (std::size_t i = 0; i < layout.classes.size(); ++i) {
    index[layout.classes[i]] = static_cast<std::int64_t>(i);
  }
  std::vector<std::int64_t> labels;
  EP_RETURN_IF_ERROR(sink.Begin(train ? Role::kXTrain : Role::kXTest,
                                ArrayHeader{DType::kUInt8, 1, {n, c, h, w}}));
  EP_RETURN_IF_ERROR(open([&](ByteStream& in) -> Status {
    TarReader tar(in);
    while (true) {
      EP_ASSIGN_OR_RETURN(auto entry, tar.Next());
      if (!entry) return Ok();
      auto m = Parse(entry->name);
      if (!m || m->train != train) continue;
      // The tar is the same bytes as in the survey; a count that moved means it changed under us.
      if (static_cast<std::int64_t>(labels.size()) == n)
        return Invalid("the archive changed while read");
      EP_ASSIGN_OR_RETURN(std::string file, ReadAll(tar.entry(), entry->size, entry->name));
      EP_ASSIGN_OR_RETURN(auto pixels, DecodeImage(file, static_cast<int>(c), static_cast<int>(h),
                                                   static_cast<int>(w), entry->name));
      EP_RETURN_IF_ERROR(
          sink.Data(std::string_view(reinterpret_cast<const char*>(pixels.data()), pixels.size())));
      labels.push_back(index.at(m->label));
    }
  }));
  if (static_cast<std::int64_t>(labels.size()) != n)
    return Invalid("the archive changed while read");
  EP_RETURN_IF_ERROR(sink.End());
  EP_RETURN_IF_ERROR(
      sink.Begin(train ? Role::kYTrain : Role::kYTest, ArrayHeader{DType::kInt64, 8, {n}}));
  EP_RETURN_IF_ERROR(sink.Data(std::string_view(reinterpret_cast<const char*>(labels.data()),
                                                labels.size() * sizeof(std::int64_t))));
  return sink.End();
}

}  // namespace

bool IsImageFolderMember(std::string_view name) {
  return Stripped(name) == "shape.txt" || Parse(name).has_value();
}

Status ReadImageFolderTar(const TarOpener& open, std::uint64_t max_bytes, ArraySink& sink) {
  EP_ASSIGN_OR_RETURN(Layout layout, Survey(open));
  std::uint64_t budget = max_bytes;
  EP_RETURN_IF_ERROR(StreamSplit(open, layout, /*train=*/true, budget, sink));
  EP_RETURN_IF_ERROR(StreamSplit(open, layout, /*train=*/false, budget, sink));
  std::size_t longest = 1;
  for (const auto& name : layout.classes) longest = std::max(longest, name.size());
  std::string packed;
  for (const auto& name : layout.classes) packed += name + std::string(longest - name.size(), '\0');
  EP_RETURN_IF_ERROR(sink.Begin(
      Role::kClassNames,
      ArrayHeader{DType::kBytes, longest, {static_cast<std::int64_t>(layout.classes.size())}}));
  EP_RETURN_IF_ERROR(sink.Data(packed));
  return sink.End();
}

}  // namespace edgeprune::datasets
