#include "edgeprune/common/crypto.hpp"

#include <gtest/gtest.h>

#include <set>

#include "support/temp_dir.hpp"

namespace edgeprune::crypto {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 31 + 7);
  Sha256 h;
  for (size_t off = 0; off < data.size(); off += 977) {
    h.Update(std::string_view(data).substr(off, 977));
  }
  EXPECT_EQ(h.HexDigest(), Sha256Hex(data));
  // After a digest the object starts over.
  h.Update("ab");
  h.Update(std::string_view("c").data(), 1);
  EXPECT_EQ(h.HexDigest(), Sha256Hex("abc"));
}

TEST(Sha256Test, FileHashMatchesAndMissingFileNamesPath) {
  testing::TempDir dir;
  std::string big(300000, 'x');
  std::string p = dir.WriteFile("blob.bin", big);
  auto h = Sha256FileHex(p);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  EXPECT_EQ(*h, Sha256Hex(big));
  auto missing = Sha256FileHex(dir.File("nope.bin"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file_unreadable");
  EXPECT_NE(missing.error().message.find("nope.bin"), std::string::npos);
}

TEST(Ed25519Test, SignVerifyRoundTrip) {
  auto kp = GenerateEd25519();
  ASSERT_TRUE(kp.ok()) << kp.error().ToString();
  EXPECT_NE(kp->private_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(kp->public_pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  auto sig = Ed25519Sign(kp->private_pem, "manifest bytes");
  ASSERT_TRUE(sig.ok()) << sig.error().ToString();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(Ed25519Verify(kp->public_pem, "manifest bytes", *sig).ok());
  auto pub = Ed25519PublicFromPrivate(kp->private_pem);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, kp->public_pem);
}

TEST(Ed25519Test, TamperedMessageOrSignatureIsRefused) {
  auto kp = GenerateEd25519();
  ASSERT_TRUE(kp.ok());
  std::string sig = Ed25519Sign(kp->private_pem, "payload").value();
  auto bad_msg = Ed25519Verify(kp->public_pem, "payloae", sig);
  ASSERT_FALSE(bad_msg.ok());
  EXPECT_EQ(bad_msg.error().code, "bad_signature");
  std::string flipped = sig;
  flipped[10] ^= 1;
  auto bad_sig = Ed25519Verify(kp->public_pem, "payload", flipped);
  ASSERT_FALSE(bad_sig.ok());
  EXPECT_EQ(bad_sig.error().code, "bad_signature");
  auto short_sig = Ed25519Verify(kp->public_pem, "payload", sig.substr(0, 63));
  ASSERT_FALSE(short_sig.ok());
  EXPECT_EQ(short_sig.error().code, "bad_signature");
}

TEST(Ed25519Test, WrongKeyIsRefused) {
  auto a = GenerateEd25519().value();
  auto b = GenerateEd25519().value();
  std::string sig = Ed25519Sign(a.private_pem, "m").value();
  auto r = Ed25519Verify(b.public_pem, "m", sig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "bad_signature");
}

TEST(Ed25519Test, GarbageKeysAreInvalidKey) {
  auto a = GenerateEd25519().value();
  auto s = Ed25519Sign("not a pem", "m");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "invalid_key");
  // A public key where a private one belongs, and vice versa.
  EXPECT_EQ(Ed25519Sign(a.public_pem, "m").error().code, "invalid_key");
  EXPECT_EQ(Ed25519Verify(a.private_pem, "m", std::string(64, 'x')).error().code, "invalid_key");
  EXPECT_EQ(Ed25519KeyId("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .error()
                .code,
            "invalid_key");
}

TEST(Ed25519Test, KeyIdIsStableAndDistinct) {
  auto a = GenerateEd25519().value();
  auto b = GenerateEd25519().value();
  auto ida = Ed25519KeyId(a.public_pem);
  ASSERT_TRUE(ida.ok());
  EXPECT_EQ(ida->size(), 16u);
  EXPECT_EQ(*ida, Ed25519KeyId(a.public_pem).value());
  EXPECT_NE(*ida, Ed25519KeyId(b.public_pem).value());
}

TEST(Ed25519Test, KnownKeyIdFromRfc8032Vector) {
  // RFC 8032 test 1 public key 'd75a98...511a' in SubjectPublicKeyInfo form.
  const std::string pem =
      "-----BEGIN PUBLIC KEY-----\n"
      "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
      "-----END PUBLIC KEY-----\n";
  auto raw = HexDecode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").value();
  EXPECT_EQ(Ed25519KeyId(pem).value(), Sha256Hex(raw).substr(0, 16));
  // RFC 8032 test 1: empty message signature.
  auto sig = HexDecode(
                 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                 "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
                 .value();
  EXPECT_TRUE(Ed25519Verify(pem, "", sig).ok());
}

TEST(Ed25519Test, LoadPemFilesCheckKind) {
  testing::TempDir dir;
  auto kp = GenerateEd25519().value();
  auto priv = dir.WriteFile("signing.key", kp.private_pem);
  auto pub = dir.WriteFile("signing.pub", kp.public_pem);
  EXPECT_EQ(LoadEd25519PrivatePem(priv).value(), kp.private_pem);
  EXPECT_EQ(LoadEd25519PublicPem(pub).value(), kp.public_pem);
  auto swapped = LoadEd25519PrivatePem(pub);
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.error().code, "invalid_key");
  EXPECT_NE(swapped.error().message.find("signing.pub"), std::string::npos);
  auto missing = LoadEd25519PublicPem(dir.File("absent.pub"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file_not_found");
}

TEST(TokenTest, RandomTokensAreUrlSafeAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string t = RandomToken(32);
    EXPECT_EQ(t.size(), 43u);  // 32 bytes → 43 chars without padding
    EXPECT_EQ(t.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_EQ(Base64Decode(RandomToken(16)).value().size(), 16u);
}

TEST(TokenTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret-token"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(EncodingTest, HexRoundTripAndErrors) {
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(HexDecode("00FF10").value(), std::string("\x00\xff\x10", 3));
  EXPECT_EQ(HexDecode("abc").error().code, "invalid_hex");
  EXPECT_EQ(HexDecode("zz").error().code, "invalid_hex");
}

TEST(EncodingTest, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : vectors) {
    EXPECT_EQ(Base64Encode(plain), enc);
    EXPECT_EQ(Base64Decode(enc).value(), plain);
  }
  std::string bin("\xfb\xff\xfe", 3);
  EXPECT_EQ(Base64Encode(bin), "+//+");
  EXPECT_EQ(Base64UrlEncode(bin), "-__-");
  EXPECT_EQ(Base64Decode("-__-").value(), bin);
  EXPECT_EQ(Base64Decode("Zm9v!").error().code, "invalid_base64");
  EXPECT_EQ(Base64Decode("Z").error().code, "invalid_base64");
}

}  // namespace
}  // namespace edgeprune::crypto
