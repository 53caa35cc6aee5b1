// SafeTensors::parse (every .safetensors the programs read: weights, checkpoints, optimizer state), then what
// the programs do with a file that parsed: read each tensor as float (copy_to), the checkpoint metadata.
#include "fuzz_common.hpp"
#include "hw1/core/safetensors.hpp"
#include "hw1/train/checkpoint.hpp"

void hw1_fuzz_seeds(const std::filesystem::path& dir) {
  const std::vector<float> f{1.5f, -2.0f, 0.25f, 3.0f, 4.0f, 5.0f};
  const std::vector<double> d{1.0, 2.0};
  const std::vector<std::int64_t> l{7, -1};
  const std::vector<std::uint8_t> u{1, 2, 3};
  {
    hw1::SafeTensorsWriter w;
    w.add("conv1.weight", hw1::Shape{2, 3}, f.data());
    w.add("bn1.num_batches_tracked", hw1::Shape{}, l.data());
    w.write((dir / "weights.safetensors").string());
  }
  {
    hw1::SafeTensorsWriter w;
    hw1::CheckpointInfo info;
    info.model = "resnet101", info.num_classes = 10, info.input_size = 224, info.epoch = 3;
    info.metric_name = "val_accuracy", info.metric = 0.5;
    w.metadata = info.to_metadata();
    w.add("fc.weight", hw1::Shape{2, 1, 3, 1}, f.data());
    w.add("fc.bias", hw1::Shape{2}, d.data());
    w.add("u8", hw1::Shape{3}, u.data());
    w.add("empty", hw1::Shape{0, 4}, f.data());
    w.write((dir / "checkpoint.safetensors").string());
  }
  // F16 / BF16 written by hand (the writer only writes the types hw1 produces).
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]}})";
  std::string bytes(8, '\0');
  bytes[0] = char(header.size());
  bytes += header + std::string("\x00\x3c\x01\x80\x80\x3f", 6);
  hw1::fuzz::write_seed(dir, "half.safetensors", bytes);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hw1::fuzz::run([&] {
    const hw1::SafeTensors st = hw1::SafeTensors::parse({data, data + size}, "fuzz.safetensors");
    hw1::fuzz::read_every_tensor(st);  // ASan checks that copy_to stays inside the file
    if (st.metadata.count("format")) hw1::CheckpointInfo::from(st);
  });
}
