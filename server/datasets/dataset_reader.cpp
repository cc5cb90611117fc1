#include "server/datasets/dataset_reader.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/datasets/byte_stream.hpp"
#include "server/datasets/dataset_error.hpp"
#include "server/datasets/image_folder.hpp"
#include "server/datasets/npy.hpp"
#include "server/datasets/tar_archive.hpp"
#include "server/datasets/zip_archive.hpp"

namespace edgeprune::datasets {
namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::uint64_t kMaxClassNamesText = 1024 * 1024;

// A stream with a few bytes already read from it put back in front.
class Prefixed : public ByteStream {
 public:
  Prefixed(std::string prefix, ByteStream& rest) : prefix_(std::move(prefix)), rest_(rest) {}
  Result<std::size_t> Read(char* out, std::size_t n) override {
    if (pos_ < prefix_.size()) {
      const std::size_t k = std::min(n, prefix_.size() - pos_);
      std::copy_n(prefix_.data() + pos_, k, out);
      pos_ += k;
      return k;
    }
    return rest_.Read(out, n);
  }

 private:
  std::string prefix_;
  std::size_t pos_ = 0;
  ByteStream& rest_;
};

// Up to n bytes (fewer only at the end).
Result<std::string> ReadHead(ByteStream& in, std::size_t n) {
  std::string head(n, '\0');
  std::size_t have = 0;
  while (have < n) {
    EP_ASSIGN_OR_RETURN(std::size_t got, in.Read(head.data() + have, n - have));
    if (got == 0) break;
    have += got;
  }
  head.resize(have);
  return head;
}

// Streams exactly `bytes` bytes of an array to the sink, then insists on the end of `in`.
Status StreamArray(ByteStream& in, Role role, const ArrayHeader& header, const std::string& what,
                   ArraySink& sink) {
  const auto bytes = header.ByteSize();
  if (!bytes) return TooLarge(what + " has an impossibly large shape");
  EP_RETURN_IF_ERROR(sink.Begin(role, header));
  std::unique_ptr<char[]> buf(new char[kChunk]);
  std::uint64_t left = *bytes;
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunk));
    EP_ASSIGN_OR_RETURN(std::size_t got, in.Read(buf.get(), want));
    if (got == 0) return Invalid(what + " holds fewer bytes than its shape needs");
    EP_RETURN_IF_ERROR(sink.Data(std::string_view(buf.get(), got)));
    left -= got;
  }
  char extra;
  EP_ASSIGN_OR_RETURN(std::size_t more, in.Read(&extra, 1));
  if (more != 0) return Invalid(what + " holds more bytes than its shape needs");
  return sink.End();
}

// The role an IDX archive member plays, by its file name; nullopt for other files.
std::optional<Role> IdxRole(const std::string& path) {
  std::string base = std::filesystem::path(path).filename().string();
  if (base == "class_names.txt") return Role::kClassNames;
  if (base.size() > 3 && base.ends_with(".gz")) base.resize(base.size() - 3);
  if (base.starts_with(".")) return std::nullopt;  // macOS resource forks "._train-..."
  const bool images = base.find("-images") != std::string::npos;
  const bool labels = base.find("-labels") != std::string::npos;
  if (images == labels) return std::nullopt;
  if (base.starts_with("train-")) return images ? Role::kXTrain : Role::kYTrain;
  if (base.starts_with("t10k-") || base.starts_with("test-")) return images ? Role::kXTest : Role::kYTest;
  return std::nullopt;
}

// One IDX file (gzip detected from its first bytes), at most `budget` bytes once inflated.
Status ReadIdxMember(ByteStream& raw, Role role, const std::string& what, std::uint64_t& budget,
                     ArraySink& sink) {
  EP_ASSIGN_OR_RETURN(std::string magic, ReadHead(raw, 2));
  Prefixed member(magic, raw);
  std::optional<Inflater> gunzip;
  ByteStream* in = &member;
  if (magic.size() == 2 && magic[0] == '\x1f' && magic[1] == '\x8b') {
    gunzip.emplace(member, Inflater::Format::kGzip, budget, what);
    in = &*gunzip;
  }
  if (role == Role::kClassNames) {
    EP_ASSIGN_OR_RETURN(std::string text, ReadHead(*in, kMaxClassNamesText + 1));
    if (text.size() > kMaxClassNamesText) return TooLarge(what + " is larger than 1 MiB");
    std::vector<std::string> names;
    std::size_t pos = 0, longest = 1;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      names.push_back(line);
      longest = std::max(longest, line.size());
      pos = end + 1;
    }
    while (!names.empty() && names.back().empty()) names.pop_back();
    ArrayHeader h{DType::kBytes, longest, {static_cast<std::int64_t>(names.size())}};
    std::string packed;
    for (const auto& n : names) packed += n + std::string(longest - n.size(), '\0');
    EP_RETURN_IF_ERROR(sink.Begin(role, h));
    EP_RETURN_IF_ERROR(sink.Data(packed));
    return sink.End();
  }
  unsigned char head[4];
  EP_RETURN_IF_ERROR(ReadExact(*in, reinterpret_cast<char*>(head), 4, what));
  if (head[0] != 0 || head[1] != 0) return Invalid(what + " is not an IDX file");
  if (head[2] != 0x08) return Invalid(what + ": only unsigned-byte IDX files (type 0x08) are read");
  const int rank = head[3];
  if (rank < 1 || rank > 4) return Invalid(what + ": IDX rank must be 1 to 4");
  ArrayHeader h{DType::kUInt8, 1, {}};
  for (int i = 0; i < rank; ++i) {
    unsigned char d[4];
    EP_RETURN_IF_ERROR(ReadExact(*in, reinterpret_cast<char*>(d), 4, what));
    h.shape.push_back((static_cast<std::int64_t>(d[0]) << 24) | (d[1] << 16) | (d[2] << 8) | d[3]);
  }
  if (rank == 3) h.shape.insert(h.shape.begin() + 1, 1);  // [N, H, W] images get one channel
  const auto bytes = h.ByteSize();
  if (!bytes || *bytes > budget) return TooLarge(what + " is larger than the data set limit");
  EP_RETURN_IF_ERROR(StreamArray(*in, role, h, what, sink));
  budget -= gunzip ? gunzip->produced() : *bytes;
  return Ok();
}

// The per-sample layouts an .npz may declare in its optional `layout` array. A sample's rank
// alone cannot tell grey images [H, W] from signals [C, L]; the layout can. The other values
// only assert what the rank already says, so a file that names them is read as before.
struct SampleLayout {
  const char* name;
  std::size_t rank;   // of one sample
  const char* shape;  // of the whole array, for messages
};
constexpr SampleLayout kLayouts[] = {
    {"CHW", 3, "[N, C, H, W]"}, {"HW", 2, "[N, H, W]"}, {"CL", 2, "[N, C, L]"}, {"F", 1, "[N, F]"}};
constexpr const char* kLayoutChoices = "'CHW', 'HW', 'CL' or 'F'";

// "[60, 28, 28]", for messages.
std::string ShapeText(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The text of a one-string array ('<U n' or '|S n' elements), up to its first NUL; nullopt when
// it holds anything but printable ASCII (no layout does, and the value is echoed in messages).
std::optional<std::string> AsciiText(const ArrayHeader& h, const std::string& bytes) {
  std::string text;
  const std::size_t step = h.dtype == DType::kUtf32 ? 4 : 1;
  for (std::size_t i = 0; i + step <= bytes.size(); i += step) {
    std::uint32_t c = 0;
    for (std::size_t k = 0; k < step; ++k) {  // little-endian code points
      c |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + k])) << (8 * k);
    }
    if (c == 0) break;
    if (c < 0x20 || c >= 0x7F) return std::nullopt;
    text += static_cast<char>(c);
  }
  return text;
}

// Reads `layout.npy` when the archive has one: nullptr without it. np.savez(..., layout='HW')
// stores a 0-d '<U2' array; a 1-element array and byte strings ('|S') are accepted too.
Result<const SampleLayout*> ReadLayout(const ZipArchive& zip) {
  const ZipEntry* found = nullptr;
  for (const auto& entry : zip.entries()) {
    if (entry.name != "layout.npy") continue;
    if (found) return Invalid("the archive holds layout.npy twice");
    found = &entry;
  }
  if (!found) return nullptr;
  const std::string must = std::string("layout must be one string: ") + kLayoutChoices;
  EP_ASSIGN_OR_RETURN(auto stream, zip.OpenEntry(*found));
  auto header = ReadNpyHeader(*stream, "layout.npy");
  if (!header.ok()) {
    if (header.error().code != "dataset_invalid") return header.error();
    return Invalid(must + " (" + header.error().message + ")");
  }
  if (header->dtype != DType::kUtf32 && header->dtype != DType::kBytes) {
    return Invalid(must + ", not an array of " + DTypeName(header->dtype));
  }
  const bool one = header->shape.empty() || (header->shape.size() == 1 && header->shape[0] == 1);
  if (!one) return Invalid(must + ", not an array of shape " + ShapeText(header->shape));
  // At most 4 KiB: ParseNpyDescr bounds '<U n' and '|S n'.
  std::string bytes(header->item_size, '\0');
  EP_RETURN_IF_ERROR(ReadExact(*stream, bytes.data(), bytes.size(), "layout.npy"));
  char extra;
  EP_ASSIGN_OR_RETURN(std::size_t more, stream->Read(&extra, 1));
  if (more != 0) return Invalid("layout.npy holds more bytes than its shape needs");
  const auto text = AsciiText(*header, bytes);
  for (const auto& layout : kLayouts) {
    if (text && *text == layout.name) return &layout;
  }
  std::string message =
      text ? "layout '" + text->substr(0, 32) + "' is unknown" : "layout is not ASCII text";
  message += std::string("; it must be ") + kLayoutChoices + ", the axes of one sample";
  // 'NHW' and the like name the sample axis too: say what to write instead.
  if (text && text->size() > 1 && (*text)[0] == 'N') {
    for (const auto& layout : kLayouts) {
      if (text->substr(1) == layout.name) message += std::string(" (write '") + layout.name + "')";
    }
  }
  return Invalid(message);
}

// Checks a sample array against the declared layout and gives [N, H, W] images their channel
// axis ([N, 1, H, W], as IDX images get): the bytes are the same, and from here on (validator,
// normalized files, probe sets, models) the data set is an image data set like any other.
Status ApplyLayout(const SampleLayout& layout, ArrayHeader& header, const std::string& what) {
  if (header.shape.size() != layout.rank + 1) {
    return ShapeMismatch(what + " is " + ShapeText(header.shape) + ", but layout '" +
                         layout.name + "' needs " + layout.shape);
  }
  if (std::string_view(layout.name) == "HW") header.shape.insert(header.shape.begin() + 1, 1);
  return Ok();
}

Status ReadNpz(const ZipArchive& zip, ArraySink& sink) {
  // Before any sample array: np.savez writes its arrays in keyword order, so layout.npy may come
  // after x_train.npy, and the sink must see each array's final shape in Begin.
  EP_ASSIGN_OR_RETURN(const SampleLayout* layout, ReadLayout(zip));
  for (const auto& entry : zip.entries()) {
    if (!entry.name.ends_with(".npy")) continue;
    const auto role = RoleFromName(entry.name.substr(0, entry.name.size() - 4));
    if (!role) continue;
    EP_ASSIGN_OR_RETURN(auto stream, zip.OpenEntry(entry));
    EP_ASSIGN_OR_RETURN(ArrayHeader header, ReadNpyHeader(*stream, entry.name));
    if (layout && (*role == Role::kXTrain || *role == Role::kXTest)) {
      EP_RETURN_IF_ERROR(ApplyLayout(*layout, header, entry.name));
    }
    EP_RETURN_IF_ERROR(StreamArray(*stream, *role, header, entry.name, sink));
  }
  return Ok();
}

Status ReadIdxZip(const ZipArchive& zip, std::uint64_t budget, ArraySink& sink) {
  for (const auto& entry : zip.entries()) {
    const auto role = IdxRole(entry.name);
    if (!role) continue;
    EP_ASSIGN_OR_RETURN(auto stream, zip.OpenEntry(entry));
    EP_RETURN_IF_ERROR(ReadIdxMember(*stream, *role, entry.name, budget, sink));
  }
  return Ok();
}

Status ReadIdxTar(ByteStream& in, std::uint64_t budget, ArraySink& sink) {
  TarReader tar(in);
  while (true) {
    EP_ASSIGN_OR_RETURN(auto entry, tar.Next());
    if (!entry) return Ok();
    const auto role = IdxRole(entry->name);
    if (!role) continue;
    EP_RETURN_IF_ERROR(ReadIdxMember(tar.entry(), *role, entry->name, budget, sink));
  }
}

// Whether a tar holds an image folder rather than IDX files: a member named as one.
Result<bool> HoldsImageFolder(const TarOpener& open) {
  bool found = false;
  EP_RETURN_IF_ERROR(open([&](ByteStream& in) -> Status {
    TarReader tar(in);
    while (!found) {
      EP_ASSIGN_OR_RETURN(auto entry, tar.Next());
      if (!entry) break;
      found = IsImageFolderMember(entry->name);
    }
    return Ok();
  }));
  return found;
}

Status ReadIdxDirectory(const std::string& dir, std::uint64_t budget, ArraySink& sink) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && IdxRole(e.path().string())) files.push_back(e.path().string());
    if (files.size() > 64) return Invalid(dir + " holds too many IDX files");
  }
  if (ec) return MakeError(ErrorKind::kIo, "io_error", "listing " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    EP_ASSIGN_OR_RETURN(auto file, File::Open(path));
    FileRange in(file, 0, file->size());
    EP_RETURN_IF_ERROR(ReadIdxMember(in, *IdxRole(path), path, budget, sink));
  }
  return Ok();
}

}  // namespace

const char* SourceFormatName(SourceFormat f) {
  switch (f) {
    case SourceFormat::kNpz: return "npz";
    case SourceFormat::kIdxZip: return "idx-zip";
    case SourceFormat::kIdxTar: return "idx-tar";
    case SourceFormat::kIdxDirectory: return "idx-dir";
    case SourceFormat::kImageFolderTar:
      return "image-tar";
  }
  return "?";
}

Result<SourceFormat> ReadDatasetFile(const std::string& path, std::uint64_t max_bytes,
                                     ArraySink& sink) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    EP_RETURN_IF_ERROR(ReadIdxDirectory(path, max_bytes, sink));
    return SourceFormat::kIdxDirectory;
  }
  EP_ASSIGN_OR_RETURN(auto file, File::Open(path));
  std::string head(std::min<std::uint64_t>(file->size(), 512), '\0');
  EP_RETURN_IF_ERROR(file->ReadAt(0, head.data(), head.size()));
  if (LooksLikeZip(head)) {
    EP_ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::Open(file, max_bytes));
    const bool npz = std::any_of(zip.entries().begin(), zip.entries().end(),
                                 [](const ZipEntry& e) { return e.name.ends_with(".npy"); });
    if (npz) {
      EP_RETURN_IF_ERROR(ReadNpz(zip, sink));
      return SourceFormat::kNpz;
    }
    EP_RETURN_IF_ERROR(ReadIdxZip(zip, max_bytes, sink));
    return SourceFormat::kIdxZip;
  }
  const bool gzip = head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b';
  if (gzip || LooksLikeTar(head)) {
    // A fresh stream of the whole tar per pass: an image folder is read more than once.
    const TarOpener open = [&](const std::function<Status(ByteStream&)>& use) -> Status {
      FileRange whole(file, 0, file->size());
      if (!gzip) return use(whole);
      Inflater gunzip(whole, Inflater::Format::kGzip, max_bytes, "the tar.gz archive");
      return use(gunzip);
    };
    EP_ASSIGN_OR_RETURN(bool images, HoldsImageFolder(open));
    if (images) {
      EP_RETURN_IF_ERROR(ReadImageFolderTar(open, max_bytes, sink));
      return SourceFormat::kImageFolderTar;
    }
    EP_RETURN_IF_ERROR(open([&](ByteStream& in) { return ReadIdxTar(in, max_bytes, sink); }));
    return SourceFormat::kIdxTar;
  }
  return Invalid(
      "the file is not a .npz, a zip or tar of IDX files, an image-folder tar, or a "
      ".tar.gz");
}

}  // namespace edgeprune::datasets
