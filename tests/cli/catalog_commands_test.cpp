// Uploads, models, data sets, deploy and the build jobs it starts, through the CLI against the
// real server and its model workers.
#include <gtest/gtest.h>

#include <fstream>

#include "support/build_paths.hpp"
#include "cli_fixture.hpp"

namespace edgeprune::cli_test {
namespace {

namespace bj = boost::json;
const std::string kFixtures = edgeprune::testing::SourceDir() + "/tests/fixtures";
const std::string kMaster = kFixtures + "/models/lenet5_scripted.pt";

TEST_F(CliTest, UploadsStreamWithProgressAndListTheCatalog) {
  auto ds = Cli({"-o", "json", "datasets", "upload", kFixtures + "/datasets/images_savez_compressed.npz",
                 "--name", "imgs"});
  ASSERT_EQ(ds.exit, 0) << ds.err;
  const std::string ds_id(ds.json.at("id").as_string());
  // Not a terminal: plain progress lines on stderr, the last one with the rate.
  EXPECT_NE(ds.err.find("uploading images_savez_compressed.npz: "), std::string::npos) << ds.err;
  EXPECT_NE(ds.err.find("(100%)"), std::string::npos) << ds.err;
  EXPECT_NE(ds.err.find("/s in "), std::string::npos) << ds.err;
  EXPECT_EQ(Cli({"-o", "json", "datasets", "ls"}).out, RawGet("/api/v1/datasets") + "\n");
  auto ds_show = Cli({"datasets", "show", ds_id});
  EXPECT_NE(ds_show.out.find("train:        12 samples"), std::string::npos) << ds_show.out;

  auto model = Cli({"models", "upload", kMaster, "--name", "lenet", "--dataset", "synthetic:1x28x28:10",
                    "--input-shape", "1,28,28"});
  ASSERT_EQ(model.exit, 0) << model.err;
  EXPECT_NE(model.out.find("parameters:  61706"), std::string::npos) << model.out;
  auto models = Cli({"-o", "json", "models", "ls"});
  ASSERT_EQ(models.json.at("items").as_array().size(), 1u);
  const std::string id(models.json.at("items").at(0).at("id").as_string());
  EXPECT_EQ(Cli({"-o", "json", "models", "show", id}).out, RawGet("/api/v1/models/" + id) + "\n");
  EXPECT_EQ(Cli({"models", "variants", id}).exit, 0);
  EXPECT_EQ(Cli({"models", "show", "mdl-0000000000000000"}).exit, 3);

  // The server's refusal, with its code, and nothing stored.
  const std::string junk = dir_.WriteFile("junk.pt", std::string(4096, 'x'));
  auto refused = Cli({"models", "upload", junk, "--name", "junk", "--dataset", "fashion-mnist",
                      "--input-shape", "1,28,28"});
  EXPECT_EQ(refused.exit, 1);
  EXPECT_NE(refused.err.find("edgeprune: invalid_model: "), std::string::npos) << refused.err;
  EXPECT_EQ(Cli({"models", "upload", dir_.File("missing.pt"), "--name", "m", "--dataset", "x"}).exit, 2);
}

TEST_F(CliTest, UploadMemoryStaysBoundedWhateverTheFileSize) {
  // 48 MiB through a CLI limited to 40 MB of address space (it needs about 25): the body can only
  // stream from disk.
  const std::string big = dir_.File("big.bin");
  {
    std::ofstream f(big, std::ios::binary);
    std::string mib(1 << 20, '\x5a');
    for (int i = 0; i < 48; ++i) f << mib;
  }
  edgeprune::testing::Process p({.program = "bash",
                                 .args = {"-c", "ulimit -v 40000 && exec \"$0\" \"$@\"", edgeprune::testing::CliBin(),
                                          "datasets", "upload", big, "--name", "big"},
                                 .env = {{"EDGEPRUNE_CONFIG", config_path_}}});
  EXPECT_EQ(p.Wait(std::chrono::seconds(120)), 1) << "the server refuses what is not a data set";
  EXPECT_NE(p.Stderr().find("48.0 MiB of 48.0 MiB (100%)"), std::string::npos) << p.Stderr();
  EXPECT_NE(p.Stderr().find("edgeprune: dataset_invalid: "), std::string::npos) << p.Stderr();
}

TEST_F(CliTest, DeployStartsBuildsThatJobsWatchFollowsToTheEnd) {
  const Device d = EnrollDevice("gw-build");
  ASSERT_FALSE(d.id.empty());
  auto model = Cli({"-o", "json", "models", "upload", kMaster, "--name", "lenet", "--dataset",
                    "synthetic:1x28x28:10", "--input-shape", "1,28,28"});
  ASSERT_EQ(model.exit, 0) << model.err;
  const std::string id(model.json.at("id").as_string());

  EXPECT_EQ(Cli({"deploy", id}).exit, 2) << "no devices named";
  auto deployed = Cli({"deploy", id, "--device", d.id});
  ASSERT_EQ(deployed.exit, 0) << deployed.err;
  EXPECT_NE(deployed.out.find(d.id), std::string::npos) << deployed.out;

  auto jobs = Cli({"-o", "json", "jobs", "ls"});
  ASSERT_EQ(jobs.exit, 0);
  ASSERT_GE(jobs.json.at("items").as_array().size(), 1u) << jobs.out;
  const std::string job(jobs.json.at("items").at(0).at("id").as_string());

  // Not a terminal: plain lines, the view once and then what changed, until every build ended.
  auto watch = Cli({"jobs", "watch", "--interval", "0.2"}, {}, std::chrono::seconds(300));
  ASSERT_EQ(watch.exit, 0) << watch.out << watch.err;
  EXPECT_NE(watch.out.find("builds: 1 succeeded"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find(job), std::string::npos);
  EXPECT_EQ(watch.out.find("\033["), std::string::npos) << "no terminal codes in a pipe";

  auto shown = Cli({"-o", "json", "jobs", "show", job});
  EXPECT_EQ(std::string(shown.json.at("state").as_string()), "succeeded");
  EXPECT_EQ(std::string(shown.json.at("lease_owner").as_string()), "") << "finished: no lease";
  EXPECT_TRUE(shown.json.at("lease_expires_at").is_null());
  auto shown_text = Cli({"jobs", "show", job});
  ASSERT_EQ(shown_text.exit, 0) << shown_text.err;
  EXPECT_NE(shown_text.out.find("\nlease:            -\n"), std::string::npos) << shown_text.out;
  auto cancel = Cli({"jobs", "cancel", job});
  EXPECT_EQ(cancel.exit, 1) << "a finished job cannot be cancelled";
  EXPECT_NE(cancel.err.find("job_finished"), std::string::npos) << cancel.err;
  EXPECT_EQ(Cli({"jobs", "show", "job-nope"}).exit, 3);
  auto variants = Cli({"-o", "json", "models", "variants", id});
  EXPECT_EQ(std::string(variants.json.at("items").at(0).at("status").as_string()), "ready");
  EXPECT_EQ(Cli({"jobs", "watch"}).out, "no unfinished jobs\n");
}

}  // namespace
}  // namespace edgeprune::cli_test
