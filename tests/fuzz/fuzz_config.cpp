// libFuzzer target for the TOML configuration loader (common/src/config.cpp, toml++): the input is
// a TOML file loaded against a schema with every key type and constraint the server and agent
// schemas use (strings, bounded ints and doubles, bools, nested sections). The environment is not
// read (prefix ""). Property: a config that loads returns, for every key, a value of the key's
// type within its bounds.
#include <cstdint>
#include <cstdlib>

#include "edgeprune/common/config.hpp"
#include "fuzz_input_file.hpp"

using namespace edgeprune;

namespace {

const ConfigSchema& Schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    s.String("server.listen_address", "127.0.0.1", "address");
    s.Int("server.listen_port", 8443, 0, 65535, "port");
    s.Int("limits.body_bytes", 1 << 20, 1024, std::int64_t{1} << 40, "body");
    s.Double("variants.max_accuracy_drop", 0.05, 0.0, 1.0, "drop");
    s.Double("telemetry.interval_s", 30.0, 0.1, 86400.0, "interval");
    s.Bool("metrics.enabled", true, "metrics");
    s.String("tls.cert", "", "cert");
    s.Int("agent.deep.nested.key", 1, -5, 5, "nested");
    s.Add(ConfigKey{"store.mode", ConfigType::kString, std::string("wal"), "mode",
                    [](const ConfigValue& v) -> std::optional<std::string> {
                      const auto& text = std::get<std::string>(v);
                      if (text != "wal" && text != "delete") return "must be wal or delete";
                      return std::nullopt;
                    }});
    return s;
  }();
  return schema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input(".toml");
  auto config = Config::Load(Schema(), input.Write(data, size), {}, "");
  if (!config.ok()) return 0;
  const auto port = config->GetInt("server.listen_port");
  if (port < 0 || port > 65535) std::abort();
  const double drop = config->GetDouble("variants.max_accuracy_drop");
  if (!(drop >= 0.0 && drop <= 1.0)) std::abort();
  const auto mode = config->GetString("store.mode");
  if (mode != "wal" && mode != "delete") std::abort();
  (void)config->GetBool("metrics.enabled");
  (void)config->GetString("tls.cert");
  const auto nested = config->GetInt("agent.deep.nested.key");
  if (nested < -5 || nested > 5) std::abort();
  return 0;
}
