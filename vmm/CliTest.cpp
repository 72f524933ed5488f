// Cli: `ember run` parsing into a MachineConfig, help/version, option errors, memory sizes.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "vmm/Cli.h"

namespace ember::vmm {
namespace {

Result<CliOutcome> parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"ember"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parseCommandLine(static_cast<int>(argv.size()), argv.data());
}

MachineConfig runConfig(std::initializer_list<const char*> args) {
  auto r = parse(args);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok() || !std::holds_alternative<CliRun>(*r)) {
    ADD_FAILURE() << "not a run";
    return {};
  }
  return std::get<CliRun>(*r).config;
}

TEST(Cli, RunWithDefaults) {
  auto cfg = runConfig({"run", "--kernel", "guest.elf"});
  EXPECT_EQ(cfg.kernel, "guest.elf");
  EXPECT_EQ(cfg.memory, 256ULL << 20);
  EXPECT_EQ(cfg.cpus, 1u);
  EXPECT_EQ(cfg.log_level, "info");
  EXPECT_EQ(cfg.kvm_device, "/dev/kvm");
  EXPECT_TRUE(cfg.initrd.empty());
  EXPECT_TRUE(cfg.cmdline.empty());
}

TEST(Cli, RunWithEveryOption) {
  auto cfg = runConfig({"run", "--kernel", "vmlinux", "--initrd", "rd.img", "--cmdline",
                        "console=ttyS0 tests=all", "--memory", "3G", "--cpus", "4", "--log-level",
                        "debug", "--kvm-device", "/dev/null"});
  EXPECT_EQ(cfg.kernel, "vmlinux");
  EXPECT_EQ(cfg.initrd, "rd.img");
  EXPECT_EQ(cfg.cmdline, "console=ttyS0 tests=all");
  EXPECT_EQ(cfg.memory, 3ULL << 30);
  EXPECT_EQ(cfg.cpus, 4u);
  EXPECT_EQ(cfg.log_level, "debug");
  EXPECT_EQ(cfg.kvm_device, "/dev/null");

  auto alt = runConfig({"run", "--cpus=254", "-m", "512", "--kernel=k", "--log-level", "off"});
  EXPECT_EQ(alt.cpus, 254u);
  EXPECT_EQ(alt.memory, 512ULL << 20);
  EXPECT_EQ(alt.kernel, "k");
  EXPECT_EQ(alt.log_level, "off");
}

// Each case: the arguments and the option the one-line error must name.
TEST(Cli, ErrorsNameTheOffendingOption) {
  struct Case {
    std::initializer_list<const char*> args;
    const char* option;
  };
  const Case cases[] = {
      {{"run"}, "--kernel"},
      {{"run", "--cpus", "2"}, "--kernel"},
      {{"run", "--kernel", "k", "--cpus", "0"}, "--cpus"},
      {{"run", "--kernel", "k", "--cpus", "255"}, "--cpus"},
      {{"run", "--kernel", "k", "--cpus", "256"}, "--cpus"},
      {{"run", "--kernel", "k", "--cpus", "abc"}, "--cpus"},
      {{"run", "--kernel", "k", "--cpus", "-1"}, "--cpus"},
      {{"run", "--kernel", "k", "--memory", "12Q"}, "--memory"},
      {{"run", "--kernel", "k", "--memory", ""}, "--memory"},
      {{"run", "--kernel", "k", "--memory", "lots"}, "--memory"},
      {{"run", "--kernel", "k", "--memory", "99999999999T"}, "--memory"},
      {{"run", "--kernel", "k", "--frobnicate"}, "--frobnicate"},
      {{"run", "--kernel", "k", "--log-level", "bogus"}, "--log-level"},
      {{"run", "--kernel"}, "--kernel"},
      {{"run", "--kernel", ""}, "--kernel"},
      {{"run", "--kernel", "k", "--initrd", ""}, "--initrd"},
      {{"run", "--kernel", "k", "--kvm-device", ""}, "--kvm-device"},
      {{"run", "--kernel", "k", "--balloon", ""}, "--balloon"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const char* a : c.args) {
      joined += std::string(a) + " ";
    }
    SCOPED_TRACE(joined);
    auto r = parse(c.args);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.option), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
  }
}

TEST(Cli, MissingOrUnknownSubcommandIsAnError) {
  EXPECT_FALSE(parse({}).ok());
  EXPECT_FALSE(parse({"boot", "--kernel", "k"}).ok());
  EXPECT_FALSE(parse({"--kernel", "k"}).ok());
}

TEST(Cli, HelpAndVersionArePrinted) {
  auto help = parse({"--help"});
  ASSERT_TRUE(help.ok()) << help.error().message;
  ASSERT_TRUE(std::holds_alternative<CliPrint>(*help));
  EXPECT_NE(std::get<CliPrint>(*help).text.find("run"), std::string::npos);

  auto run_help = parse({"run", "--help"});
  ASSERT_TRUE(run_help.ok()) << run_help.error().message;
  ASSERT_TRUE(std::holds_alternative<CliPrint>(*run_help));
  const auto& text = std::get<CliPrint>(*run_help).text;
  for (const char* opt :
       {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--log-level", "--kvm-device"}) {
    EXPECT_NE(text.find(opt), std::string::npos) << opt;
  }

  auto version = parse({"--version"});
  ASSERT_TRUE(version.ok()) << version.error().message;
  ASSERT_TRUE(std::holds_alternative<CliPrint>(*version));
  EXPECT_NE(std::get<CliPrint>(*version).text.find("0.1.0"), std::string::npos);
}

TEST(Cli, SerialPorts) {
  auto cfg = runConfig({"run", "--kernel", "k", "--serial-port", "org.ember.out=stdio",
                        "--serial-port", "log_1=file:/tmp/x.log", "--serial-port",
                        "ctl-2=socket:/run/ctl.sock", "--serial-port", "o=stdout", "--serial-port",
                        "e=stderr", "--pvpanic", "--serial-log", "-"});
  ASSERT_EQ(cfg.serial_ports.size(), 5u);
  EXPECT_EQ(cfg.serial_ports[3].kind, SerialPortConfig::Kind::Stdout);
  EXPECT_EQ(cfg.serial_ports[4].kind, SerialPortConfig::Kind::Stderr);
  EXPECT_EQ(cfg.serial_log, "-");
  EXPECT_EQ(cfg.serial_ports[0].name, "org.ember.out");
  EXPECT_EQ(cfg.serial_ports[0].kind, SerialPortConfig::Kind::Stdio);
  EXPECT_EQ(cfg.serial_ports[1].kind, SerialPortConfig::Kind::File);
  EXPECT_EQ(cfg.serial_ports[1].path, "/tmp/x.log");
  EXPECT_EQ(cfg.serial_ports[2].kind, SerialPortConfig::Kind::Socket);
  EXPECT_EQ(cfg.serial_ports[2].path, "/run/ctl.sock");
  EXPECT_TRUE(cfg.pvpanic);
}

TEST(Cli, SerialPortErrorsNameTheProblem) {
  struct Case {
    std::vector<const char*> ports;
    const char* needle;
  };
  const Case cases[] = {
      {{"noequals"}, "use NAME=stdio"},
      {{"=stdio"}, "the name must be"},
      {{"a/b=stdio"}, "the name must be"},
      {{"a b=stdio"}, "the name must be"},
      {{"a=tty"}, "is not stdio, stdout, stderr, file:PATH or socket:PATH"},
      {{"a=file:"}, "is not stdio"},
      {{"a=socket:"}, "is not stdio"},
      {{"a=stdio", "a=file:/x"}, "given twice"},
      {{"a=stdio", "b=stdio"}, "only one port can be stdio"},
  };
  for (const auto& c : cases) {
    std::vector<const char*> argv{"ember", "run", "--kernel", "k"};
    for (const char* p : c.ports) {
      argv.push_back("--serial-port");
      argv.push_back(p);
    }
    auto r = parseCommandLine(static_cast<int>(argv.size()), argv.data());
    ASSERT_FALSE(r.ok()) << c.ports[0];
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
  }
  std::string long_name(65, 'n');
  EXPECT_FALSE(parseSerialPortSpec(long_name + "=stdio"));
  EXPECT_TRUE(parseSerialPortSpec(std::string(64, 'n') + "=stdio"));
  std::vector<std::string> many;
  std::vector<const char*> argv{"ember", "run", "--kernel", "k"};
  for (int i = 0; i < 32; ++i) many.push_back("p" + std::to_string(i) + "=file:/tmp/f");
  for (const auto& m : many) {
    argv.push_back("--serial-port");
    argv.push_back(m.c_str());
  }
  auto r = parseCommandLine(static_cast<int>(argv.size()), argv.data());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("at most 31"), std::string::npos) << r.error().message;
}

TEST(Cli, FileSystems) {
  auto cfg = runConfig({"run", "--kernel", "k", "--fs", "/srv", "--fs", "/home,tag=home,readonly",
                        "--fs", "socket=/run/fs.sock,tag=ext"});
  ASSERT_EQ(cfg.filesystems.size(), 3u);
  EXPECT_EQ(cfg.filesystems[0].dir, "/srv");
  EXPECT_EQ(cfg.filesystems[0].tag, "fs0");
  EXPECT_FALSE(cfg.filesystems[0].readonly);
  EXPECT_EQ(cfg.filesystems[1].tag, "home");
  EXPECT_TRUE(cfg.filesystems[1].readonly);
  EXPECT_EQ(cfg.filesystems[2].socket, "/run/fs.sock");
  EXPECT_EQ(cfg.filesystems[2].tag, "ext");
  EXPECT_TRUE(cfg.filesystems[2].dir.empty());
}

TEST(Cli, FileSystemErrorsNameTheProblem) {
  struct Case {
    const char* spec;
    const char* needle;
  };
  const Case cases[] = {
      {"", "give a directory"},
      {"readonly", "give a directory"},
      {"/srv,socket=/x,tag=t", "give a directory"},
      {"socket=/x", "needs tag=T"},
      {"socket=/x,tag=t,readonly", "readonly applies"},
      {"/srv,bogus=1", "unknown option 'bogus=1'"},
      {"/srv,tag=", "unknown option 'tag='"},
      {"/srv,tag=0123456789012345678901234567890123456", "longer than 36 bytes"},
  };
  for (const auto& c : cases) {
    auto r = parseFsSpec(c.spec, 0);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
  }
  auto dup = parse({"run", "--kernel", "k", "--fs", "/a,tag=t", "--fs", "/b,tag=t"});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("given twice"), std::string::npos);
}

}  // namespace
}  // namespace ember::vmm
