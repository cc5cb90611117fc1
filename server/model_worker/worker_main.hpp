#pragma once
// `edgeprune-server model-worker`: the process that runs uploaded models, started by
// ModelWorkerClient (worker_client.hpp), never by hand. It confines itself (sandbox.hpp), reads
// one request from stdin, does the work (worker_tasks.hpp) and answers on the event pipe
// (protocol.hpp). Its stdout is redirected to its stderr, which the server logs, so nothing a
// library prints can forge an event.
//
// Flags (set by the client): --scratch DIR, --read-only PATH (repeatable), --memory-bytes N,
// --cpu-seconds N, --file-size-bytes N, --parent PID.
//
// Thread-safety: a process entry point.

namespace edgeprune::model_worker {

int RunModelWorkerCommand(int argc, char** argv);

}  // namespace edgeprune::model_worker
