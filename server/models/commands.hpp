#pragma once
// The model toolkit's `edgeprune-server` commands (LibTorch-free header for the command table):
//   train     --arch <name> --dataset fashion-mnist --epochs N --out master.pt
//   evaluate  --model m.pt --dataset fashion-mnist   (accuracy, latency p50/p95, throughput)
//   cost      --model m.pt --input-shape 1,28,28     (params, MACs, activations per layer)
// Each takes argv with argv[0] = the command name and returns the process exit code:
// 0 success, 2 bad flags, 1 any other failure (message on stderr naming the file and reason).

namespace edgeprune::models {

int RunTrainCommand(int argc, char** argv);
int RunEvaluateCommand(int argc, char** argv);
int RunCostCommand(int argc, char** argv);

}  // namespace edgeprune::models
