// What --resume reads back from a run directory besides the checkpoints: metrics.csv (MetricsLog) and run.json
// (parse_run_args). A corrupt file is one error line naming it, never an out-of-bounds row, an exception of the
// wrong kind, or a usage printed in place of the resume. Also: their writes are durable (AtomicFile's fsyncs).
#define BOOST_TEST_MODULE run_files
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "common/testing.hpp"
#include "hw1/train/checkpoint.hpp"
#include "hw1/train/run_args.hpp"

using namespace hw1;
using hw1::test::contains;
using hw1::test::error_of;
using hw1::test::TempDir;

namespace {

const std::set<std::string> kOptions{"--out", "--resume", "--epochs", "--workers", "--lr"};
const std::set<std::string> kFlags{"--force"};

// parse_run_args("prog", {"--resume", dir}) on a run.json holding `json`.
std::string resume_error(const TempDir& dir, const std::string& json) {
  std::ofstream(dir.path / "run.json") << json;
  return error_of([&] {
    std::string prog = "prog", resume = "--resume", d = dir.str();
    char* argv[] = {prog.data(), resume.data(), d.data()};
    parse_run_args("prog", 3, argv, kOptions, kFlags, "usage: prog ...\n");
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(metrics_round_trip_and_epoch_filter) {
  TempDir tmp("run-files-metrics");
  MetricsLog log{{"epoch", "train_loss", "val_loss"}, {{1, 0.5, 0.25}, {2, 0.125, 0.0625}, {3, 1, 2}}};
  const std::string path = (tmp.path / "metrics.csv").string();
  const auto before = detail::atomic_file_fsyncs.load();
  log.write(path);
  BOOST_TEST(detail::atomic_file_fsyncs.load() - before == 2u);  // the temporary, then the directory
  const MetricsLog back = MetricsLog::read(path, 2);
  BOOST_TEST(back.columns == log.columns);
  BOOST_TEST(back.rows.size() == 2u);
  BOOST_TEST(back.rows[1] == log.rows[1]);
  // CRLF line ends (a file edited on Windows) read the same.
  BOOST_TEST(MetricsLog::parse("epoch,a\r\n1,2\r\n", "m.csv", 5).rows.at(0) == (std::vector<double>{1, 2}));
}

BOOST_AUTO_TEST_CASE(metrics_rows_must_hold_one_number_per_column) {
  // A short row used to be kept: fit() then read r[1..3] of it, past its end.
  const std::string e = error_of([] { MetricsLog::parse("epoch,train_loss,val_loss,val_miou\n1,0.5\n", "m.csv", 9); });
  BOOST_TEST(e == "m.csv: corrupt metrics log (line 2 holds 2 values, the header names 4 columns)");
  const std::string e2 = error_of([] { MetricsLog::parse("epoch,a\n1,2\n2,x\n", "m.csv", 9); });
  BOOST_TEST(e2 == "m.csv: corrupt metrics log (line 3: 'x' is not a number)");
  // std::stod's partial parse ("2abc" -> 2) and its own exceptions (std::invalid_argument) are gone.
  BOOST_TEST(contains(error_of([] { MetricsLog::parse("epoch,a\n1,2abc\n", "m.csv", 9); }), "'2abc' is not a number"));
  BOOST_TEST(contains(error_of([] { MetricsLog::parse("epoch,a\n1,\n", "m.csv", 9); }), "m.csv: corrupt metrics log"));
  BOOST_TEST(contains(error_of([] { MetricsLog::parse("", "m.csv", 9); }), "m.csv: corrupt metrics log (its first line"));
  BOOST_TEST(contains(error_of([] { MetricsLog::parse("1,2\n", "m.csv", 9); }), "not a header starting with 'epoch'"));
}

BOOST_AUTO_TEST_CASE(run_json_with_help_among_its_options_is_an_error_not_an_exit) {
  // Cli prints the usage and calls exit(0) on --help: a resume from such a file used to "succeed" untrained.
  TempDir tmp("run-files-help");
  for (const char* h : {"-h", "--help"}) {
    const std::string e = resume_error(tmp, std::string(R"({"program":"prog","args":["--out","x",")") + h + "\"]}");
    BOOST_TEST(e == (tmp.path / "run.json").string() + ": corrupt run description (" + h +
                        " among the run's stored options)");
  }
}

BOOST_AUTO_TEST_CASE(run_json_with_unknown_options_is_corrupt_not_a_usage_error) {
  TempDir tmp("run-files-unknown");
  std::ofstream(tmp.path / "run.json") << R"({"program":"prog","args":["--bogus","1"]})";
  std::string prog = "prog", resume = "--resume", d = tmp.str();
  char* argv[] = {prog.data(), resume.data(), d.data()};
  bool usage_error = false;
  std::string msg;
  try {
    parse_run_args("prog", 3, argv, kOptions, kFlags, "usage");
  } catch (const UsageError& e) {
    usage_error = true;
  } catch (const Error& e) {
    msg = e.what();
  }
  BOOST_TEST(!usage_error, "a corrupt run.json is reported as a mistake on the command line");
  BOOST_TEST(contains(msg, "run.json: corrupt run description (unknown option '--bogus')"), msg);
  BOOST_TEST(contains(resume_error(tmp, "{"), "run.json: corrupt run description ("));
  BOOST_TEST(contains(resume_error(tmp, R"({"program":"prog","args":[1]})"), "run.json: corrupt run description ("));
  // A "program" that is not a string used to escape as nlohmann::type_error (not an hw1::Error).
  const std::string e = resume_error(tmp, R"({"program":1,"args":[]})");
  BOOST_TEST(contains(e, "run.json: corrupt run description ([json.exception.type_error.302]"), e);
  BOOST_TEST(contains(resume_error(tmp, R"({"program":"other","args":[]})"), ": is a run of other, not of prog"));
  BOOST_TEST(contains(resume_error(tmp, R"({"args":[]})"), ": is a run of another program, not of prog"));
}

BOOST_AUTO_TEST_CASE(run_json_round_trip_is_durable) {
  TempDir tmp("run-files-rt");
  std::string prog = "prog", out = "--out", dir = tmp.str(), ep = "--epochs", three = "3";
  char* argv[] = {prog.data(), out.data(), dir.data(), ep.data(), three.data()};
  const RunArgs r = parse_run_args("prog", 5, argv, kOptions, kFlags, "usage");
  const auto before = detail::atomic_file_fsyncs.load();
  write_run_json("prog", r);
  BOOST_TEST(detail::atomic_file_fsyncs.load() - before == 2u);
  std::string resume = "--resume", ep2 = "--epochs", five = "5";
  char* argv2[] = {prog.data(), resume.data(), dir.data(), ep2.data(), five.data()};
  const RunArgs back = parse_run_args("prog", 5, argv2, kOptions, kFlags, "usage");
  BOOST_TEST(back.resume);
  BOOST_TEST(back.cli.str("--epochs") == "5");
}
