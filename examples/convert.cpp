// hw1-convert: a PyTorch .pth (torch.save of a state_dict, zip or legacy format, or a checkpoint dict holding one)
// to .safetensors under the same names and dtypes, or --list its tensors. No Python: hw1/core/pth.hpp reads it.
#include <cstdio>
#include <iostream>
#include <string>

#include "hw1/core/pth.hpp"
#include "hw1/train/cli.hpp"

namespace {

const char* kUsage =
    "usage: hw1-convert IN.pth OUT.safetensors [--pth-key K]\n"
    "       hw1-convert --list IN.pth [--pth-key K]\n"
    "  Writes the state_dict of IN.pth (a bare one, or the one under key K of a checkpoint dict; default: the only\n"
    "  one there) to OUT.safetensors, every tensor under its name (a `module.` prefix of DataParallel / DDP\n"
    "  dropped) in its own dtype, contiguous. --list prints name, shape and dtype per tensor instead.\n"
    "  A file that pickles anything but tensors and containers (a whole model, code) is refused, never run.\n";

int run(int argc, char** argv) {
  // The two file names are positional: hw1::Cli reads the options, the rest is taken here.
  std::vector<std::string> files;
  std::vector<char*> opts{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) == 0 || a == "-h") {
      opts.push_back(argv[i]);
      if (a == "--pth-key" && i + 1 < argc) opts.push_back(argv[++i]);
    } else {
      files.push_back(a);
    }
  }
  const hw1::Cli cli(int(opts.size()), opts.data(), {"--pth-key"}, {"--list"}, kUsage);
  const bool list = cli.flag("--list");
  if (list ? files.size() != 1 : files.size() != 2)
    throw hw1::UsageError(list ? "--list takes one file, IN.pth" : "give IN.pth and OUT.safetensors");
  const hw1::SafeTensors f = hw1::read_pth(files[0], cli.str("--pth-key"));
  if (list) {
    std::size_t bytes = 0;
    for (const auto& n : f.names()) {
      const auto& in = f.info(n);
      std::cout << n << " " << hw1::shape_str(in.shape) << " " << in.dtype << "\n";
      bytes += in.end - in.begin;
    }
    std::cout << f.names().size() << " tensors, " << bytes << " bytes\n";
    return 0;
  }
  hw1::SafeTensorsWriter w;
  std::size_t bytes = 0;
  for (const auto& n : f.names()) {
    const auto& in = f.info(n);
    w.add_raw(n, in.dtype, in.shape, f.bytes(n), in.end - in.begin);
    bytes += in.end - in.begin;
  }
  w.write(files[1]);
  std::cout << "hw1-convert: " << files[0] << " -> " << files[1] << ": " << f.names().size() << " tensors, " << bytes
            << " bytes\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hw1::run_main("hw1-convert", kUsage, [&] { return run(argc, argv); });
}
