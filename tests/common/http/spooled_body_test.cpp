// Bodies of routes with a spool_dir (the model upload) are streamed to a private temp file, never
// held in memory, and the file is gone once the request is over, on every path: answered, refused
// for size while streaming, handler error, client gone mid-body. Real TLS on 127.0.0.1:0.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "edgeprune/common/crypto.hpp"
#include "common/http/map_authenticator.hpp"
#include "common/http/raw_tls_client.hpp"
#include "common/http/server_fixture.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::http {
namespace {

using testing::MapAuthenticator;
using testing::RawTlsClient;
using RawResponse = boost::beast::http::response<boost::beast::http::string_body>;

constexpr std::uint64_t kLimit = 4 * 1024 * 1024;

class SpooledBodyTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    spool_ = dir_.path() + "/spool";  // made by the server, 0700
    options_.discard_limit = 0;  // a body declared over the limit is answered 413 at once, unread
    auto auth = std::make_shared<MapAuthenticator>();
    auth->tokens = {{"op-token", Role::kOperator}};
    router_ = std::make_shared<Router>(auth);
    Route upload{Verb::post, "/upload", [this](const RequestContext& ctx) -> Result<Response> {
                   std::lock_guard lock(mu_);
                   seen_in_memory_ = ctx.body.size();
                   if (!ctx.spooled_body) return MakeError(ErrorKind::kInternal, "no_spool", "not spooled");
                   seen_path_ = ctx.spooled_body->path;
                   struct stat st {};
                   if (::stat(seen_path_.c_str(), &st) == 0) seen_mode_ = st.st_mode & 0777;
                   auto digest = crypto::Sha256FileHex(seen_path_);
                   if (!digest.ok()) return digest.error();
                   if (ctx.QueryParam("fail")) {
                     return MakeError(ErrorKind::kInvalidArgument, "invalid_model", "refused after reading");
                   }
                   return JsonResponse(boost::json::object{
                       {"bytes", ctx.BodySize()}, {"sha256", *digest}});
                 }, Auth::kOperator, ""};
    upload.max_body_bytes = kLimit;
    upload.spool_dir = spool_;
    ASSERT_TRUE(router_->Add(std::move(upload)).ok());
  }

  std::unique_ptr<RawTlsClient> Raw() {
    auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
    EXPECT_TRUE(tls.ok());
    return std::make_unique<RawTlsClient>(*tls, port_);
  }

  std::size_t FilesInSpool() const {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(spool_, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return n;
  }

  std::string spool_;
  std::mutex mu_;
  std::size_t seen_in_memory_ = 0;
  std::string seen_path_;
  unsigned seen_mode_ = 0;
};

TEST_F(SpooledBodyTest, ABodyIsStreamedToAPrivateFileThatIsGoneAfterTheAnswer) {
  StartServer();
  // Bytes that differ along the body, past the spool's 1 MiB gathering more than once and not on
  // a boundary: a lost, repeated or reordered piece changes the digest.
  std::string body(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 2654435761u) >> 11);
  auto r = Client()->Send({"POST", "/upload", {{"Authorization", "Bearer op-token"}}, body});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"bytes\":" + std::to_string(body.size())), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(crypto::Sha256Hex(body)), std::string::npos) << "the file holds the body";
  std::lock_guard lock(mu_);
  EXPECT_EQ(seen_in_memory_, 0u) << "the handler got the body as a file, not a string";
  EXPECT_EQ(seen_path_.rfind(spool_ + "/", 0), 0u) << seen_path_;
  EXPECT_EQ(seen_mode_, 0600u);
  struct stat dir {};
  ASSERT_EQ(::stat(spool_.c_str(), &dir), 0);
  EXPECT_EQ(dir.st_mode & 0777, 0700u);
  EXPECT_FALSE(std::filesystem::exists(seen_path_));
  EXPECT_EQ(FilesInSpool(), 0u);
}

TEST_F(SpooledBodyTest, AChunkedBodyIsStreamedToo) {
  StartServer();
  auto raw = Raw();
  raw->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  RawResponse res;
  ASSERT_FALSE(raw->Read(res));
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_NE(res.body().find(crypto::Sha256Hex("hello world")), std::string::npos) << res.body();
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(FilesInSpool(), 0u);
}

TEST_F(SpooledBodyTest, OverTheLimitWhileStreamingIs413AndLeavesNoFile) {
  StartServer();
  // Chunked: no length to judge from the header; the limit stops it while it streams.
  auto raw = Raw();
  raw->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
             "Transfer-Encoding: chunked\r\n\r\n");
  const std::string chunk(1024 * 1024, 'z');
  std::ostringstream framed;
  framed << std::hex << chunk.size() << "\r\n" << chunk << "\r\n";
  boost::beast::error_code write_error;
  for (int i = 0; i < 5 && !write_error; ++i) write_error = raw->TryWrite(framed.str());
  RawResponse res;
  if (!raw->Read(res)) {
    EXPECT_EQ(res.result_int(), 413u);
    EXPECT_NE(res.body().find("payload_too_large"), std::string::npos) << res.body();
    EXPECT_NE(res.body().find(std::to_string(kLimit)), std::string::npos) << res.body();
  }
  EXPECT_TRUE(edgeprune::testing::WaitUntil([&] { return FilesInSpool() == 0; }));
  // Declared too big: refused from the header, no file is even made.
  auto declared = Raw();
  declared->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                  "Content-Length: " + std::to_string(kLimit + 1) + "\r\n\r\n");
  RawResponse refused;
  ASSERT_FALSE(declared->Read(refused));
  EXPECT_EQ(refused.result_int(), 413u);
  EXPECT_EQ(FilesInSpool(), 0u);
  std::lock_guard lock(mu_);
  EXPECT_TRUE(seen_path_.empty()) << "no handler ran";
}

TEST_F(SpooledBodyTest, AHandlerErrorLeavesNoFile) {
  StartServer();
  auto r = Client()->Send({"POST", "/upload?fail=1", {{"Authorization", "Bearer op-token"}},
                           std::string(100 * 1024, 'q')});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("invalid_model"), std::string::npos);
  EXPECT_EQ(FilesInSpool(), 0u);
}

TEST_F(SpooledBodyTest, AClientGoneMidBodyLeavesNoFile) {
  StartServer();
  {
    auto raw = Raw();
    raw->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
               "Content-Length: 2000000\r\n\r\n" + std::string(500 * 1024, 'p'));
    ASSERT_TRUE(edgeprune::testing::WaitUntil([&] { return FilesInSpool() == 1; }))
        << "the body is being spooled";
  }  // the client goes without sending the rest
  EXPECT_TRUE(edgeprune::testing::WaitUntil([&] { return FilesInSpool() == 0; }));
  std::lock_guard lock(mu_);
  EXPECT_TRUE(seen_path_.empty()) << "no handler ran for a body that never arrived";
}

TEST_F(SpooledBodyTest, ReadTimeoutBoundsAStallNotTheWholeUpload) {
  options_.read_timeout = std::chrono::milliseconds(400);
  StartServer();
  // Steady: ten pieces 150 ms apart take 1.5 s in all, well over the 400 ms read timeout, and
  // every gap is under it: the upload goes through.
  auto steady = Raw();
  steady->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                "Content-Length: 10240\r\n\r\n");
  std::string sent;
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    const std::string piece(1024, static_cast<char>('a' + i));
    ASSERT_FALSE(steady->TryWrite(piece)) << "piece " << i;
    sent += piece;
  }
  RawResponse res;
  ASSERT_FALSE(steady->Read(res));
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_NE(res.body().find(crypto::Sha256Hex(sent)), std::string::npos) << res.body();

  // Stalled: half the body, then silence longer than the read timeout: the connection is
  // closed without an answer and the partial file is removed.
  auto stalled = Raw();
  stalled->Write("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
                 "Content-Length: 2048\r\n\r\n" + std::string(1024, 's'));
  RawResponse cut;
  EXPECT_TRUE(stalled->Read(cut)) << "answered " << cut.result_int() << " instead of closing";
  EXPECT_TRUE(edgeprune::testing::WaitUntil([&] { return FilesInSpool() == 0; }));
}

}  // namespace
}  // namespace edgeprune::http
